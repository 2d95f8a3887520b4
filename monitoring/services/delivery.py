"""Alert delivery to a webhook, and acknowledging alerts.

The body is JSON; ``X-Touchstone-Signature: sha256=<hex>`` is the HMAC-SHA256, under the shared
secret, of ``"<timestamp>.<body>"`` where ``<timestamp>`` is the ``X-Touchstone-Timestamp``
header (Unix seconds), so a receiver can refuse a replayed old request. ``Idempotency-Key`` is
the alert's id (``touchstone-alert-<id>``): the same on every attempt, so a receiver dedupes.

Exactly one sender at a time: an attempt first *claims* the row with one conditional UPDATE
(status pending/failed and due, or a sending claim that ran out) that sets it ``sending``,
counts the attempt and holds the claim until ``next_attempt_at``; only the worker whose UPDATE
matched sends. The result releases the claim in one UPDATE that also records it (``sent`` with
``delivered_at``, or ``failed`` with the error and the next attempt's time, exponential
backoff), fenced by the attempt number so a late worker cannot overwrite a newer attempt. A
worker killed between the POST and the release leaves a claim that runs out; the sweep then
sends again with the same idempotency key (the one case a receiver may see an alert twice).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

import httpx
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from monitoring.models import Alert, AlertStatus
from touchstone.audit import audit_event_record
from touchstone.errors import ApplicationError, InvalidStateTransition, NotFound
from touchstone.retry import backoff_seconds
from touchstone.roles import permission_require

DELIVER_TASK = "monitoring.tasks.alert_deliver"
SIGNATURE_HEADER = "X-Touchstone-Signature"
TIMESTAMP_HEADER = "X-Touchstone-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
RETRYABLE = (AlertStatus.PENDING, AlertStatus.FAILED)


def idempotency_key(alert_id: int) -> str:
    return f"touchstone-alert-{alert_id}"


def signature(*, secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` + hex HMAC-SHA256 of ``timestamp.body`` under ``secret``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signature_verify(*, secret: str, timestamp: str, body: bytes, header: str, tolerance_seconds: float = 300,
                     now: float | None = None) -> bool:
    """What a receiver checks: the signature matches (constant time) and the timestamp is recent."""
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance_seconds and hmac.compare_digest(signature(secret=secret, timestamp=timestamp, body=body),
                                                            header)


def alert_payload(alert: Alert) -> dict:
    monitor = alert.monitor
    return {
        "event": "alert.raised", "id": alert.pk, "idempotency_key": idempotency_key(alert.pk),
        "monitor": monitor.name, "policy": monitor.policy.slug, "partition": alert.cycle.partition_date.isoformat(),
        "cycle": alert.cycle_id, "rule": alert.rule, "kind": alert.kind, "label": alert.label,
        "value": alert.value, "threshold": alert.threshold, "message": alert.message,
        "created_at": alert.created_at.isoformat(),
        "url": f"{settings.TOUCHSTONE_PUBLIC_URL}/monitors/{monitor.name}/#alert-{alert.pk}",
    }


def alert_body(alert: Alert) -> bytes:
    return json.dumps(alert_payload(alert), sort_keys=True, separators=(",", ":")).encode()


def _claim_seconds() -> float:
    return float(settings.ALERT_WEBHOOK_TIMEOUT_SECONDS) + 30.0


def alert_claim(*, alert_id: int, now: datetime.datetime | None = None) -> int | None:
    """Claim the alert for one attempt: the attempt's number, or None when it is not due, already
    delivered, or another worker holds it. One conditional UPDATE, so two workers never both win."""
    now = now or timezone.now()
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    claimable = (Q(status__in=RETRYABLE) & due) | (Q(status=AlertStatus.SENDING) & Q(next_attempt_at__lte=now))
    with transaction.atomic():
        won = (Alert.objects.filter(claimable, pk=alert_id)
               .update(status=AlertStatus.SENDING, attempts=F("attempts") + 1,
                       next_attempt_at=now + datetime.timedelta(seconds=_claim_seconds())))
        if not won:
            return None
        return Alert.objects.values_list("attempts", flat=True).get(pk=alert_id)


@dataclass
class Delivery:
    alert_id: int
    outcome: str  # sent | failed | gave_up | not_sent | skipped
    attempt: int = 0
    error: str = ""
    retry_in: float | None = None
    status_code: int | None = None


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str, float | None]:
    """(status code or None, error text or "", Retry-After seconds)."""
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=settings.ALERT_WEBHOOK_TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:1000] or type(exc).__name__, None
    if 200 <= response.status_code < 300:
        return response.status_code, "", None
    retry_after = response.headers.get("Retry-After")
    try:
        wait = float(retry_after) if retry_after else None
    except ValueError:
        wait = None
    return response.status_code, f"HTTP {response.status_code}: {response.text[:300]}", wait


def alert_deliver(*, alert_id: int, now: datetime.datetime | None = None) -> Delivery:
    """One delivery attempt of the alert, if it is due and no one else holds it."""
    url, secret = settings.ALERT_WEBHOOK_URL, settings.ALERT_WEBHOOK_SECRET
    if not url:
        updated = Alert.objects.filter(pk=alert_id, status=AlertStatus.PENDING).update(
            status=AlertStatus.NOT_SENT, last_error="no webhook configured (TOUCHSTONE_ALERT_WEBHOOK_URL)")
        return Delivery(alert_id, "not_sent" if updated else "skipped")
    attempt = alert_claim(alert_id=alert_id, now=now)
    if attempt is None:
        return Delivery(alert_id, "skipped")
    alert = Alert.objects.select_related("monitor__policy", "cycle").get(pk=alert_id)
    body = alert_body(alert)
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
               IDEMPOTENCY_HEADER: idempotency_key(alert_id), "X-Touchstone-Event": "alert.raised",
               "User-Agent": "touchstone-alerts/1"}
    if secret:
        headers[SIGNATURE_HEADER] = signature(secret=secret, timestamp=timestamp, body=body)
    code, error, retry_after = _post(url, body, headers)
    done = timezone.now()
    mine = Alert.objects.filter(pk=alert_id, status=AlertStatus.SENDING, attempts=attempt)  # the fence
    with transaction.atomic():
        if not error:
            mine.update(status=AlertStatus.SENT, delivered_at=done, next_attempt_at=None, last_error="")
            audit_event_record(actor=None, event_type="alert.delivered", obj=alert,
                               details={"attempt": attempt, "status_code": code})
            return Delivery(alert_id, "sent", attempt, status_code=code)
        if attempt >= settings.ALERT_WEBHOOK_MAX_ATTEMPTS:
            mine.update(status=AlertStatus.GAVE_UP, last_error=error, next_attempt_at=None)
            audit_event_record(actor=None, event_type="alert.delivery_given_up", obj=alert,
                               details={"attempts": attempt, "error": error})
            return Delivery(alert_id, "gave_up", attempt, error, status_code=code)
        wait = backoff_seconds(attempt, base=settings.ALERT_WEBHOOK_BACKOFF_SECONDS,
                               cap=settings.ALERT_WEBHOOK_BACKOFF_MAX_SECONDS, retry_after=retry_after)
        mine.update(status=AlertStatus.FAILED, last_error=error,
                    next_attempt_at=done + datetime.timedelta(seconds=wait))
        return Delivery(alert_id, "failed", attempt, error, retry_in=wait, status_code=code)


def alerts_due(*, now: datetime.datetime | None = None, limit: int = 500) -> list[int]:
    """Alerts the sweep sends: pending or failed and due, or sending with a claim that ran out."""
    now = now or timezone.now()
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    if not settings.ALERT_WEBHOOK_URL:
        return list(Alert.objects.filter(status=AlertStatus.PENDING).values_list("pk", flat=True)[:limit])
    return list(Alert.objects.filter((Q(status__in=RETRYABLE) & due)
                                     | (Q(status=AlertStatus.SENDING) & Q(next_attempt_at__lte=now)))
                .order_by("created_at").values_list("pk", flat=True)[:limit])


def alert_get(*, alert_id: int) -> Alert:
    alert = Alert.objects.select_related("monitor", "cycle", "acknowledged_by").filter(pk=alert_id).first()
    if alert is None:
        raise NotFound(f"no alert {alert_id}", extra={"field": "alert"})
    return alert


class AcknowledgeInvalid(ApplicationError):
    code = "invalid_acknowledge"
    status = 400


@transaction.atomic
def alert_acknowledge(*, alert: Alert, reason: str, acting_user: AbstractBaseUser) -> Alert:
    """Someone has seen the alert and says why it needs nothing more (or what was done)."""
    permission_require(acting_user, "monitoring.change_alert", to="acknowledge alerts")
    reason = (reason or "").strip()
    if not reason:
        raise AcknowledgeInvalid("reason: say why (what was checked or done)", extra={"field": "reason"})
    if len(reason) > 500:
        raise AcknowledgeInvalid("reason: at most 500 characters", extra={"field": "reason"})
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    if alert.acknowledged_at is not None:
        raise InvalidStateTransition(
            f"alert {alert.pk} was acknowledged by {alert.acknowledged_by} at {alert.acknowledged_at:%Y-%m-%d %H:%M}",
            extra={"field": "alert"})
    alert.acknowledged_by, alert.acknowledged_at, alert.acknowledge_reason = acting_user, timezone.now(), reason
    alert.save(update_fields=["acknowledged_by", "acknowledged_at", "acknowledge_reason"])
    audit_event_record(actor=acting_user, event_type="alert.acknowledged", obj=alert, details={"reason": reason})
    return alert


def alerts_enqueue_pending(*, cycle_id: int) -> list[int]:
    """Queue the delivery of the cycle's alerts that were never tried (after its advance commits)."""
    from touchstone.tasks import enqueue_on_commit

    ids = list(Alert.objects.filter(cycle_id=cycle_id, status=AlertStatus.PENDING).values_list("pk", flat=True))
    for alert_id in ids:
        enqueue_on_commit(DELIVER_TASK, alert_id)
    return ids
