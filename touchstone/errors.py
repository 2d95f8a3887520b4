"""One error family for the whole product.

Services raise ``ApplicationError`` subclasses; the DRF handler turns them into
``{"code", "message", "extra"}``; commands print one line and exit non-zero; the admin
shows them with ``message_user(..., level=ERROR)``. Unknown errors stay 500s.
"""

from __future__ import annotations

from typing import Any

from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler


class ApplicationError(Exception):
    code = "application_error"
    status = 400

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class NotFound(ApplicationError):
    code = "not_found"
    status = 404


class PermissionDenied(ApplicationError):
    code = "permission_denied"
    status = 403


class InvalidStateTransition(ApplicationError):
    code = "invalid_state_transition"
    status = 409


class ImmutableObject(ApplicationError):
    """Raised by any path that would change something published, used or frozen."""

    code = "immutable"
    status = 409


class ServiceUnavailable(ApplicationError):
    """Something Touchstone depends on cannot be reached now; the same request may succeed
    after ``retry_after`` seconds (sent as the ``Retry-After`` header)."""

    code = "service_unavailable"
    status = 503

    def __init__(self, message: str, *, retry_after: int = 30, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message, extra=extra)
        self.retry_after = retry_after


class BrokerUnavailable(ServiceUnavailable):
    """The Celery broker refused or dropped the connection: the task was not sent."""

    code = "broker_unavailable"


class LocatedError(ApplicationError):
    """Bad input with its location: ``PATH:LINE: field: reason`` (any part may be unknown)."""

    code = "invalid_input"

    def __init__(
        self, reason: str, *, path: str | None = None, line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path, self.line, self.field, self.reason = path, line, field, reason
        where = ":".join(str(p) for p in (path, line) if p is not None)
        parts = [p for p in (where, field) if p]
        super().__init__(
            ": ".join([*parts, reason]),
            extra={"path": path, "line": line, "field": field, "reason": reason},
        )


def validation_error_fields(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested validation errors as one flat mapping from a dotted path
    (``annotation.result.0.value``; a serializer's own errors under its field's name) to messages."""
    if isinstance(detail, dict):
        fields: dict[str, list[str]] = {}
        for key, value in detail.items():
            if key == api_settings.NON_FIELD_ERRORS_KEY:
                name = prefix or str(key)
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            for path, messages in validation_error_fields(value, name).items():
                fields.setdefault(path, []).extend(messages)
        return fields
    if isinstance(detail, list) and any(isinstance(entry, dict | list) for entry in detail):
        fields = {}
        for index, entry in enumerate(detail):
            fields.update(validation_error_fields(entry, f"{prefix}.{index}" if prefix else str(index)))
        return fields
    messages = detail if isinstance(detail, list) else [detail]
    return {prefix or api_settings.NON_FIELD_ERRORS_KEY: [str(message) for message in messages]}


def drf_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, ServiceUnavailable) else None
        return Response(
            {"code": exc.code, "message": exc.message, "extra": exc.extra}, status=exc.status, headers=headers
        )
    return exception_handler(exc, context)
