"""What every app's REST API shares: the error body, the responses each endpoint documents, and a
view base that checks the read permission before anything else runs."""

from __future__ import annotations

from typing import Any, ClassVar

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.views import APIView

from touchstone.roles import permission_require


class ErrorSerializer(serializers.Serializer):
    """Every error body: ``code``, ``message`` and ``extra`` for Touchstone's errors; ``detail``
    for authentication, permission and throttling; ``{field: [reasons]}`` for invalid input."""

    code = serializers.CharField(required=False)
    message = serializers.CharField(required=False)
    extra = serializers.DictField(required=False)
    detail = serializers.CharField(required=False)


ERROR_RESPONSE = OpenApiResponse(ErrorSerializer, description="JSON naming what went wrong")


def api_responses(ok: dict, *errors: int) -> dict:
    """``ok`` and the errors every endpoint may answer (401, 403, 429) plus ``errors``."""
    return {**ok, **{code: ERROR_RESPONSE for code in sorted({401, 403, 429, *errors})}}


class PermissionApiView(APIView):
    """An API view throttled in the ``api`` scope whose every method needs ``read_permission``
    (refused naming it, for ``read_to``); writes check their own permission in their service."""

    throttle_scope = "api"
    read_permission: ClassVar[str] = ""
    read_to: ClassVar[str] = ""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        permission_require(request.user, self.read_permission, to=self.read_to)
