"""Scoped API tokens: creation (key shown once, stored hashed), revocation, DRF authentication."""

from __future__ import annotations

import hashlib
import secrets
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

if TYPE_CHECKING:
    from touchstone.models import ApiToken

# DRF imports the authentication classes while apps are still loading; models are imported late.
READ_SCOPE = "read"

KEY_PREFIX = "ts_"
# Writing last_used_at on every request would turn reads into writes; once a minute is enough.
LAST_USED_RESOLUTION_SECONDS = 60


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@transaction.atomic
def api_token_create(*, user: AbstractBaseUser, name: str, scope: str = READ_SCOPE,
                     acting_user: AbstractBaseUser | None = None) -> tuple[ApiToken, str]:
    """Create a token for ``user``; returns it and the key, which is never stored or shown again."""
    from touchstone.audit import audit_event_record
    from touchstone.models import ApiToken, ApiTokenScope

    if scope not in ApiTokenScope.values:
        raise ValueError(f"scope: must be one of {', '.join(ApiTokenScope.values)}")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(name=name, user=user, scope=scope, prefix=key[:11], key_sha256=_hash(key),
                                    created_by=acting_user)
    audit_event_record(actor=acting_user, event_type="api_token.created", obj=token,
                       details={"user": user.get_username(), "scope": scope})
    return token, key


@transaction.atomic
def api_token_revoke(*, token: ApiToken, acting_user: AbstractBaseUser | None = None) -> ApiToken:
    from touchstone.audit import audit_event_record

    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_event_record(actor=acting_user, event_type="api_token.revoked", obj=token)
    return token


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <key>`` (or ``Token <key>``)."""

    keywords = ("bearer", "token")

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode(errors="replace").lower() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header: expected '<Bearer|Token> <key>'.")
        from touchstone.models import ApiToken

        key = header[1].decode(errors="replace")
        token = ApiToken.objects.select_related("user").filter(key_sha256=_hash(key)).first()
        if token is None or token.revoked_at is not None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked API token.")
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > LAST_USED_RESOLUTION_SECONDS:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="touchstone"'


class TokenScopePermission(permissions.BasePermission):
    """Read-scoped tokens may only read; session users are limited by their permissions only."""

    message = "This API token is read-only."

    def has_permission(self, request: Request, view: Any) -> bool:
        from touchstone.models import ApiToken

        token = request.auth
        if isinstance(token, ApiToken) and token.scope == READ_SCOPE:
            return request.method in permissions.SAFE_METHODS
        return True


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """Describes the token scheme in the OpenAPI schema."""

    target_class = "touchstone.api_tokens.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer",
                "description": "A key from `manage.py apitoken create` or the admin; read-scoped keys only read."}
