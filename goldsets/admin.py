"""Golden sets in the admin: sets are editable (name, description, owners); frozen versions
and their items are read-only, with links to the version page and exports."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from goldsets.models import GoldenItem, GoldenSet, GoldenSetVersion
from touchstone.admin import ReadOnlyAdmin


class VersionInline(admin.TabularInline):
    model = GoldenSetVersion
    fields = ("number", "status", "page", "item_count", "digest", "frozen_at", "changelog", "failure_reason")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    @admin.display(description="page")
    def page(self, obj: GoldenSetVersion) -> str:
        if obj.status != "frozen":
            return "—"
        return format_html('<a href="{}">statistics</a>', reverse("goldset-version", args=[obj.golden_set.name,
                                                                                          obj.number]))

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(GoldenSet)
class GoldenSetAdmin(admin.ModelAdmin):
    list_display = ("name", "policy", "created_at")
    search_fields = ("name",)
    filter_horizontal = ("owners",)
    inlines = [VersionInline]

    def view_on_site(self, obj: GoldenSet) -> str:
        """The change page's "View on site" button opens the golden set's page."""
        return reverse("goldset-detail", args=[obj.name])

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("name", "policy", "created_by") if obj else ("created_by",)

    def save_model(self, request: HttpRequest, obj: GoldenSet, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(GoldenSetVersion)
class GoldenSetVersionAdmin(admin.ModelAdmin):
    list_display = ("__str__", "status", "item_count", "frozen_at", "digest")
    list_filter = ("status", "golden_set")
    list_select_related = ("golden_set",)
    exclude = ("stats",)

    def view_on_site(self, obj: GoldenSetVersion) -> str | None:
        """A frozen version's change page links to its statistics page."""
        return reverse("goldset-version", args=[obj.golden_set.name, obj.number]) if obj.status == "frozen" else None

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields if f.name != "stats"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is not None and obj.status == "failed"


@admin.register(GoldenItem)
class GoldenItemAdmin(ReadOnlyAdmin):
    list_display = ("external_id", "source", "gold_label", "decided_by", "version")
    list_filter = ("decided_by", "version__golden_set")
    list_select_related = ("version__golden_set",)
    search_fields = ("external_id",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]
