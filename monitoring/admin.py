"""Monitors in the admin: pause or resume them; cycles and alerts are shown read-only (their
states change only through the cycle services). New monitors come from a file
(``manage.py monitor create --file``), where the schema checks every field."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse

from monitoring.models import Alert, Cycle, CycleRun, Monitor, MonitorReference
from monitoring.services.monitors import monitor_pause
from touchstone.admin import ReadOnlyAdmin
from touchstone.errors import ApplicationError


@admin.register(Monitor)
class MonitorAdmin(admin.ModelAdmin):
    list_display = ("name", "policy", "cadence", "start_date", "review_queue", "is_paused", "created_by")
    list_filter = ("cadence", "is_paused")
    list_select_related = ("policy", "review_queue", "created_by")
    readonly_fields = ("name", "policy", "spec", "cadence", "start_date", "review_queue", "is_paused", "source_path",
                       "created_by", "created_at", "updated_at")
    actions = ("pause", "resume")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # from a file: manage.py monitor create --file PATH

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def _pause(self, request: HttpRequest, queryset: QuerySet[Monitor], paused: bool) -> None:
        for monitor in queryset:
            try:
                monitor_pause(monitor=monitor, paused=paused, acting_user=request.user)
            except ApplicationError as exc:
                self.message_user(request, exc.message, level=messages.ERROR)
                return
        self.message_user(request, f"{queryset.count()} monitors {'paused' if paused else 'resumed'}")

    @admin.action(description="Pause the selected monitors", permissions=["change"])
    def pause(self, request: HttpRequest, queryset: QuerySet[Monitor]) -> None:
        self._pause(request, queryset, True)

    @admin.action(description="Resume the selected monitors", permissions=["change"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Monitor]) -> None:
        self._pause(request, queryset, False)

    def view_on_site(self, obj: Monitor) -> str:  # the monitor's page
        return reverse("monitor-detail", args=[obj.name])


class CycleRunInline(admin.TabularInline):
    model = CycleRun
    fields = ("policy_version", "prompt_version", "is_primary", "run", "pushed_at", "estimated_at", "agreement")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Cycle)
class CycleAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "state", "stage", "reason", "sample", "audit_items", "labels_in", "cost",
                    "updated_at")
    list_filter = ("state", "monitor")
    list_select_related = ("monitor", "sample")
    inlines = [CycleRunInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "kind", "label", "value", "threshold", "status", "acknowledged_by", "created_at")
    list_filter = ("status", "kind", "monitor")
    list_select_related = ("monitor", "cycle__monitor", "acknowledged_by")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]

    def view_on_site(self, obj: Alert) -> str:  # the monitor page, where the alert is acknowledged
        return reverse("monitor-detail", args=[obj.monitor.name]) + f"#alert-{obj.pk}"


@admin.register(MonitorReference)
class MonitorReferenceAdmin(ReadOnlyAdmin):
    """Set by ``monitoring.services.references.monitor_reference_set`` (e.g. ``make demo``'s truth)."""

    list_display = ("monitor", "label", "partition_date", "value", "source", "updated_at")
    list_filter = ("monitor", "label")
    list_select_related = ("monitor",)
