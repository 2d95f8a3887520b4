"""The append-only audit log shared by every app."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from touchstone.errors import ImmutableObject


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        raise ImmutableObject("Audit events are append-only and cannot be updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise ImmutableObject("Audit events are append-only and cannot be deleted.")

    def bulk_update(self, objs: Any, *args: Any, **kwargs: Any) -> int:
        raise ImmutableObject("Audit events are append-only and cannot be updated.")


class AuditEvent(models.Model):
    """Who did what to which object, and when. Written in the same transaction as the change."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+",
    )
    event_type = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200)
    details = models.JSONField(default=dict, blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.event_type} {self.object_repr}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ImmutableObject("Audit events are append-only and cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ImmutableObject("Audit events are append-only and cannot be deleted.")


class ApiTokenScope(models.TextChoices):
    READ = "read", "Read only (pipelines)"
    WRITE = "write", "Read and write (labeling ops)"


class ApiToken(models.Model):
    """A scoped API token. Only the sha256 of the key is stored; the key is shown once."""

    name = models.CharField(max_length=100)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    scope = models.CharField(max_length=8, choices=ApiTokenScope.choices, default=ApiTokenScope.READ)
    prefix = models.CharField(max_length=12, db_index=True, editable=False, help_text="Identifies the key in logs.")
    key_sha256 = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…, {self.scope})"
