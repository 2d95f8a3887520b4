"""Signals in the admin. Signals are created with ``manage.py signal create`` or the services (so
the audit log records them); here their description and owner can be edited. A version's notes
and links can be edited until it has scores, then it is read-only; scores and imports are always
read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from evaluation.models import (
    SIGNAL_FIXED_FIELDS,
    Comparison,
    Evaluation,
    Signal,
    SignalScore,
    SignalScoreImport,
    SignalVersion,
)
from evaluation.selectors import comparison_list, evaluation_list
from touchstone.admin import ReadOnlyAdmin


class SignalVersionInline(admin.TabularInline):
    model = SignalVersion
    fields = ("number", "policy_version", "labeling_run", "commit", "model_card_url", "created_by", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Signal)
class SignalAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "policy", "output_type", "score_label", "owner", "created_at")
    list_filter = ("kind", "output_type", "policy")
    list_select_related = ("policy", "owner")
    search_fields = ("name", "description")
    inlines = [SignalVersionInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return (*SIGNAL_FIXED_FIELDS, "created_by", "created_at", "page", "evaluations", "comparisons")

    @admin.display(description="Signal page")
    def page(self, obj: Signal) -> str:
        if not obj.pk:
            return "—"
        url = reverse("signal-detail", args=[obj.name])
        return format_html('<a class="signal-page-link" href="{}">{}</a>', url, url)

    @admin.display(description="Comparisons (newest 20)")
    def comparisons(self, obj: Signal) -> str:
        rows = list(comparison_list(signal_name=obj.name)[:20]) if obj.pk else []
        if not rows:
            return "none yet: manage.py compare NAME@A NAME@B --golden-set GOLDEN_SET"
        line = '<a class="comparison-link" href="{}">comparison {}</a>: {} vs {} on {}, {}'
        return format_html_join(mark_safe("<br>"), line,
                                ((reverse("comparison-detail", args=[c.pk]), c.pk, c.signal_version_b,
                                  c.signal_version_a, c.golden_set_version, c.created_at.strftime("%Y-%m-%d %H:%M"))
                                 for c in rows))

    @admin.display(description="Evaluations (newest 20)")
    def evaluations(self, obj: Signal) -> str:
        rows = list(evaluation_list(signal_name=obj.name)[:20]) if obj.pk else []
        if not rows:
            return "none yet: manage.py evaluate NAME@V --golden-set GOLDEN_SET"
        line = '<a class="evaluation-link" href="{}">evaluation {}</a>: {} on {}, {}'
        return format_html_join(mark_safe("<br>"), line,
                                ((reverse("evaluation-detail", args=[e.pk]), e.pk, e.signal_version,
                                  e.golden_set_version, e.created_at.strftime("%Y-%m-%d %H:%M")) for e in rows))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # `manage.py signal create` (audited)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(SignalVersion)
class SignalVersionAdmin(admin.ModelAdmin):
    list_display = ("__str__", "policy_version", "labeling_run", "commit", "created_by", "created_at")
    list_filter = ("signal",)
    list_select_related = ("signal", "policy_version__policy", "labeling_run", "created_by")
    fields = ("signal", "number", "policy_version", "notes", "model_card_url", "commit", "labeling_run",
              "prompt_version", "created_by", "created_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        fixed = ("signal", "number", "policy_version", "labeling_run", "prompt_version", "created_by", "created_at")
        if obj is not None and obj.has_scores():
            return self.fields
        return fixed

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # `manage.py signal version` (audited, numbered)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.has_scores():
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(SignalScore)
class SignalScoreAdmin(ReadOnlyAdmin):
    list_display = ("version", "item", "label", "score", "observed_at")
    list_filter = ("version__signal",)
    list_select_related = ("version__signal", "item")
    search_fields = ("item__external_id",)
    show_full_result_count = False  # scores run into millions: no COUNT(*) per page

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]


@admin.register(SignalScoreImport)
class SignalScoreImportAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "status", "imported", "duplicates", "rejected", "unknown", "started_by",
                    "started_at")
    list_filter = ("status",)
    list_select_related = ("version__signal", "started_by")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]


@admin.register(Evaluation)
class EvaluationAdmin(ReadOnlyAdmin):
    """Evaluations are immutable: shown here with a link to their page, made by `manage.py evaluate`."""

    list_display = ("__str__", "signal_version", "golden_set_version", "score_count", "created_by", "created_at",
                    "page")
    list_select_related = ("signal_version__signal", "golden_set_version__golden_set", "created_by")
    list_filter = ("signal_version__signal",)
    exclude = ("document",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields if f.name != "document"] + ["page"]

    @admin.display(description="page")
    def page(self, obj: Evaluation) -> str:
        return format_html('<a href="{}">open the evaluation page</a>', reverse("evaluation-detail", args=[obj.pk]))


@admin.register(Comparison)
class ComparisonAdmin(ReadOnlyAdmin):
    """Comparisons are immutable: shown here with a link to their page, made by `manage.py compare`."""

    list_display = ("__str__", "signal_version_a", "signal_version_b", "golden_set_version", "created_by",
                    "created_at", "page")
    list_select_related = ("signal_version_a__signal", "signal_version_b__signal", "golden_set_version__golden_set",
                           "created_by")
    exclude = ("document",)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Comparisons share the evaluations' permissions (touchstone.roles has no comparison row).
        return request.user.has_perm("evaluation.view_evaluation")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields if f.name != "document"] + ["page"]

    @admin.display(description="page")
    def page(self, obj: Comparison) -> str:
        return format_html('<a href="{}">open the comparison page</a>', reverse("comparison-detail", args=[obj.pk]))
