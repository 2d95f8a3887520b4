"""Admin for runs: endpoints, labeling runs (state changes through services), batches."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from runs.models import LabelingRun, LLMBatch, LLMEndpoint, RunVoter
from runs.services import runs
from touchstone.admin import ReadOnlyAdmin
from touchstone.errors import ApplicationError


@admin.register(LLMEndpoint)
class LLMEndpointAdmin(admin.ModelAdmin):
    list_display = ("name", "base_url", "is_simulator", "max_concurrency", "requests_per_minute", "tokens_per_minute",
                    "price_input_per_million", "price_output_per_million")


class RunVoterInline(admin.TabularInline):
    model = RunVoter
    fields = ("position", "endpoint", "model", "temperature", "seed")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _run_action(service: Any, verb: str) -> Any:
    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: Any) -> None:
        for run in queryset:
            try:
                service(run=run, acting_user=request.user)
            except ApplicationError as exc:
                modeladmin.message_user(request, f"{run}: {exc.message}", messages.ERROR)
            else:
                modeladmin.message_user(request, f"{run}: {verb}.")

    action.__name__ = f"run_{verb.replace(' ', '_')}"
    action.short_description = f"{verb.capitalize()} selected runs"  # type: ignore[attr-defined]
    return action


@admin.register(LabelingRun)
class LabelingRunAdmin(ReadOnlyAdmin):
    list_display = ("name", "status", "executor", "sample", "prompt_version", "page", "estimated_cost", "created_at")
    list_filter = ("status", "executor")
    list_select_related = ("sample", "prompt_version__policy_version__policy",
                           "prompt_version__template_version__template")
    inlines = [RunVoterInline]
    readonly_fields = [f.name for f in LabelingRun._meta.fields]
    actions = [_run_action(runs.labeling_run_start, "started"), _run_action(runs.labeling_run_pause, "paused"),
               _run_action(runs.labeling_run_resume, "resumed"), _run_action(runs.labeling_run_cancel, "cancelled"),
               _run_action(runs.labeling_run_retry_failed, "retried failed")]

    @admin.display(description="run page")
    def page(self, obj: LabelingRun) -> str:
        return format_html('<a href="{}">progress</a>', reverse("run-detail", args=[obj.pk]))

    def view_on_site(self, obj: LabelingRun) -> str:
        """The change page's "View on site" button opens the run page."""
        return reverse("run-detail", args=[obj.pk])

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Allows the state-changing actions (which go through services); fields stay read-only.
        return obj is None and request.user.has_perm("runs.change_labelingrun")


@admin.register(LLMBatch)
class LLMBatchAdmin(ReadOnlyAdmin):
    list_display = ("run", "remote_batch_id", "status", "remote_status", "request_count", "polls", "updated_at")
    list_filter = ("status",)
    list_select_related = ("run",)
