"""Write audit events. Callers run inside the transaction of the change they record."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import models

from touchstone.models import AuditEvent


def audit_event_record(
    *, actor: AbstractBaseUser | None, event_type: str, obj: models.Model,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Record ``event_type`` on ``obj``. Runs inside the caller's transaction."""
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        event_type=event_type,
        object_type=obj._meta.label,
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        details=details or {},
    )
