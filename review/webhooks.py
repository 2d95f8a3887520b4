"""Label Studio's webhook: annotation created, updated, deleted. Authenticated by a shared
secret header (anything else: 403, nothing stored). The body is checked against the schema
below (anything else: 400 naming the field, nothing stored); the work is review_queue_webhook's."""

from __future__ import annotations

import datetime as dt
import hmac
import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from rest_framework import serializers

from review.services.queues import review_queue_webhook
from touchstone.errors import validation_error_fields

LS_ID = {"min_value": 1, "max_value": 2**31 - 1}  # Label Studio ids; our columns are PositiveIntegerField
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
CLOCK_SKEW = dt.timedelta(days=1)


class _Ref(serializers.Serializer):
    id = serializers.IntegerField(**LS_ID)


class _AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 time with a zone (Label Studio sends UTC), between 2000 and tomorrow."""

    default_error_messages = {
        "naive": "Datetime has no time zone; send UTC (…Z) or an offset.",
        "window": "Datetime must be between 2000-01-01 and a day from now.",
    }

    def enforce_timezone(self, value: dt.datetime) -> dt.datetime:
        if timezone.is_naive(value):
            self.fail("naive")
        value = super().enforce_timezone(value)
        if not EARLIEST <= value <= timezone.now() + CLOCK_SKEW:
            self.fail("window")
        return value


class _UserField(serializers.Field):
    """``completed_by``: a user id, or a user object with an id (the REST API's form)."""

    default_error_messages = {"invalid": "Expected a user id or an object with an integer id."}

    def to_internal_value(self, data: Any) -> int:
        field = serializers.IntegerField(**LS_ID)
        try:
            return field.run_validation(data["id"] if isinstance(data, dict) else data)
        except (KeyError, serializers.ValidationError):
            self.fail("invalid")


class _RegionValue(serializers.Serializer):
    choices = serializers.ListField(child=serializers.CharField(max_length=200), required=False, allow_null=True)
    text = serializers.ListField(child=serializers.CharField(allow_blank=True, trim_whitespace=False),
                                 required=False, allow_null=True)


class _Region(serializers.Serializer):
    from_name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    value = _RegionValue(required=False, allow_null=True)


class _Annotation(serializers.Serializer):
    id = serializers.IntegerField(**LS_ID)
    task = serializers.IntegerField(required=False, allow_null=True, **LS_ID)
    completed_by = _UserField(required=False, allow_null=True)
    was_cancelled = serializers.BooleanField(required=False, default=False)
    result = _Region(many=True, required=False, allow_null=True)
    created_at = _AwareDateTimeField(required=False, allow_null=True)
    updated_at = _AwareDateTimeField(required=False, allow_null=True)
    lead_time = serializers.FloatField(required=False, allow_null=True, min_value=0)


class WebhookInputSerializer(serializers.Serializer):
    """What Touchstone reads of an event (Label Studio sends more; the rest is ignored)."""

    ANNOTATION_EVENTS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED")

    action = serializers.ChoiceField(choices=[*ANNOTATION_EVENTS, "ANNOTATIONS_DELETED"])
    project = _Ref()
    task = _Ref(required=False, allow_null=True)
    annotation = _Annotation(required=False)
    annotations = _Ref(many=True, required=False)

    def validate(self, data: dict) -> dict:
        if data["action"] == "ANNOTATIONS_DELETED":
            if "annotations" not in data:
                raise serializers.ValidationError({"annotations": "This field is required for ANNOTATIONS_DELETED."})
            return data
        if "annotation" not in data:
            raise serializers.ValidationError({"annotation": f"This field is required for {data['action']}."})
        if not (data.get("task") or data["annotation"].get("task")):
            raise serializers.ValidationError({"task": "Name the task here or in annotation.task."})
        return data


def _error(status: int, code: str, message: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"code": code, "message": message, "extra": extra}, status=status)


@csrf_exempt
@require_POST
def label_studio_webhook(request: HttpRequest) -> JsonResponse:
    secret = settings.LABEL_STUDIO_WEBHOOK_SECRET
    given = request.headers.get(settings.LABEL_STUDIO_WEBHOOK_HEADER, "")
    if not secret or not hmac.compare_digest(given.encode(), secret.encode()):
        return _error(403, "forbidden", "missing or wrong webhook secret")
    try:
        body = json.loads(request.body)
    except (ValueError, RecursionError):
        return _error(400, "invalid_input", "the body is not JSON")
    event = WebhookInputSerializer(data=body)
    if not event.is_valid():
        fields = validation_error_fields(event.errors)
        return _error(400, "invalid_input", "; ".join(f"{name}: {errors[0]}" for name, errors in fields.items()),
                      fields=fields)
    outcome = review_queue_webhook(payload=event.validated_data)
    return JsonResponse({"stored": outcome.stored, "queue": outcome.queue})
