"""Label Studio's webhook: annotation created, updated, deleted. Authenticated by a shared
secret header (anything else: 403, nothing stored); the work is review_queue_webhook's."""

from __future__ import annotations

import hmac
import json

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from review.services.queues import review_queue_webhook


@csrf_exempt
@require_POST
def label_studio_webhook(request: HttpRequest) -> JsonResponse:
    secret = settings.LABEL_STUDIO_WEBHOOK_SECRET
    given = request.headers.get(settings.LABEL_STUDIO_WEBHOOK_HEADER, "")
    if not secret or not hmac.compare_digest(given.encode(), secret.encode()):
        return JsonResponse({"code": "forbidden", "message": "missing or wrong webhook secret"}, status=403)
    try:
        payload = json.loads(request.body)
    except ValueError:
        return JsonResponse({"code": "invalid_input", "message": "the body is not JSON"}, status=400)
    outcome = review_queue_webhook(payload=payload if isinstance(payload, dict) else {})
    return JsonResponse({"stored": outcome.stored, "queue": outcome.queue})
