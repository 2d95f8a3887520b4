from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from touchstone.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor", "event_type", "object_type", "object_repr")
    list_filter = ("event_type", "object_type")
    search_fields = ("object_repr", "object_id", "actor__username")
    date_hierarchy = "created_at"
    list_select_related = ("actor",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
