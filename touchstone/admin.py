from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest

from touchstone.api_tokens import api_token_create, api_token_revoke
from touchstone.models import ApiToken, AuditEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    """Imported, recorded or frozen things: shown, never added, changed or deleted here."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "actor", "event_type", "object_type", "object_repr")
    list_filter = ("event_type", "object_type")
    search_fields = ("object_repr", "object_id", "actor__username")
    date_hierarchy = "created_at"
    list_select_related = ("actor",)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Create a token here: its key is shown once, in the confirmation message."""

    list_display = ("name", "user", "scope", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("scope",)
    fields = ("name", "user", "scope", "prefix", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        always = ("prefix", "created_at", "last_used_at", "revoked_at")
        return ("name", "user", "scope", *always) if obj else always

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        if change:
            return
        token, key = api_token_create(user=obj.user, name=obj.name, scope=obj.scope, acting_user=request.user)
        obj.pk = token.pk
        messages.warning(request, f"API key for {token.name}: {key} — copy it now, it is not shown again.")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        for token in queryset:
            api_token_revoke(token=token, acting_user=request.user)
        messages.success(request, f"Revoked {queryset.count()} tokens.")
