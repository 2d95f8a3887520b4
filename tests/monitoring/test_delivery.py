"""Alert webhook delivery against a real local HTTP server: the signature verifies, a down
server is retried with backoff and recorded, then delivered once it is back; two concurrent
senders deliver once; the sweep finds what is due; acknowledging is audited (service and CLI)."""

from __future__ import annotations

import datetime
import http.server
import json
import socket
import threading
import time
from io import StringIO

import pytest
from celery.exceptions import Retry
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from monitoring.models import Alert, AlertStatus
from monitoring.services import delivery
from monitoring.services.delivery import alert_acknowledge, alert_deliver, alerts_due, signature, signature_verify
from tests.monitoring.factories import alert_make, cycle_make, monitor_make
from touchstone.errors import InvalidStateTransition, PermissionDenied
from touchstone.models import AuditEvent

SECRET = "s3cret-shared"
DAY = datetime.date(2026, 11, 9)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """A webhook receiver on a real port: verifies each request, records it; ``delay`` slows it."""

    def __init__(self, port: int) -> None:
        self.port, self.requests, self.delay, self.server = port, [], 0.0, None

    def start(self) -> Receiver:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(receiver.delay)
                ok = signature_verify(secret=SECRET, timestamp=self.headers["X-Touchstone-Timestamp"], body=body,
                                      header=self.headers.get("X-Touchstone-Signature", ""))
                receiver.requests.append({"headers": dict(self.headers), "body": json.loads(body), "verified": ok})
                self.send_response(204 if ok else 401)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/touchstone"


@pytest.fixture
def receiver(settings):
    r = Receiver(free_port())
    settings.ALERT_WEBHOOK_URL, settings.ALERT_WEBHOOK_SECRET = r.url, SECRET
    settings.ALERT_WEBHOOK_TIMEOUT_SECONDS = 3
    settings.ALERT_WEBHOOK_BACKOFF_SECONDS, settings.ALERT_WEBHOOK_BACKOFF_MAX_SECONDS = 5, 300
    yield r
    r.stop()


@pytest.fixture
def alert(published, ops):
    return alert_make(cycle_make(monitor_make(policy=published.policy, user=ops), DAY))


def test_signature_is_hmac_sha256_of_timestamp_and_body():
    # Independent check: the digest computed by openssl-compatible hashlib on the documented input.
    import hashlib
    import hmac
    body = b'{"id":1}'
    expected = "sha256=" + hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature(secret="k", timestamp="1700000000", body=body) == expected
    assert signature_verify(secret="k", timestamp="1700000000", body=body, header=expected, now=1700000100)
    assert not signature_verify(secret="k", timestamp="1700000000", body=body + b" ", header=expected, now=1700000100)
    assert not signature_verify(secret="other", timestamp="1700000000", body=body, header=expected, now=1700000100)
    assert not signature_verify(secret="k", timestamp="1700000000", body=body, header=expected, now=1700009999)
    assert not signature_verify(secret="k", timestamp="soon", body=body, header=expected)


@pytest.mark.django_db
def test_delivered_signed_with_the_alert_id_as_idempotency_key(receiver, alert):
    receiver.start()
    result = alert_deliver(alert_id=alert.pk)
    assert result.outcome == "sent" and result.attempt == 1 and result.status_code == 204
    [request] = receiver.requests
    assert request["verified"]
    assert request["headers"]["Idempotency-Key"] == f"touchstone-alert-{alert.pk}"
    assert request["body"]["id"] == alert.pk and request["body"]["monitor"] == "harassment-daily"
    assert request["body"]["partition"] == "2026-11-09" and request["body"]["value"] == 0.31
    assert request["body"]["url"].endswith(f"/monitors/harassment-daily/#alert-{alert.pk}")
    alert.refresh_from_db()
    assert alert.status == AlertStatus.SENT and alert.attempts == 1 and alert.delivered_at is not None
    assert alert.next_attempt_at is None and alert.last_error == ""
    assert AuditEvent.objects.filter(event_type="alert.delivered", object_id=str(alert.pk)).count() == 1
    assert alert_deliver(alert_id=alert.pk).outcome == "skipped"  # delivered: never again
    assert len(receiver.requests) == 1
    assert alerts_due() == []


@pytest.mark.django_db
def test_a_wrong_secret_is_refused_by_the_receiver_and_retried(receiver, alert, settings):
    receiver.start()
    settings.ALERT_WEBHOOK_SECRET = "not-the-shared-one"
    result = alert_deliver(alert_id=alert.pk)
    assert result.outcome == "failed" and result.status_code == 401
    assert receiver.requests[0]["verified"] is False
    alert.refresh_from_db()
    assert alert.status == AlertStatus.FAILED and alert.last_error.startswith("HTTP 401")


@pytest.mark.django_db
def test_server_down_is_retried_with_backoff_recorded_then_delivered_once(receiver, alert):
    t0 = timezone.now()
    first = alert_deliver(alert_id=alert.pk, now=t0)  # nothing listens on the port
    assert first.outcome == "failed" and "ConnectError" in first.error
    alert.refresh_from_db()
    assert alert.status == AlertStatus.FAILED and alert.attempts == 1 and "ConnectError" in alert.last_error
    wait1 = (alert.next_attempt_at - t0).total_seconds()
    assert 2.5 <= wait1 <= 5.5  # base 5 s, upper half jittered
    assert alert_deliver(alert_id=alert.pk, now=t0).outcome == "skipped"  # not due yet
    assert alerts_due(now=t0) == [] and alerts_due(now=alert.next_attempt_at) == [alert.pk]

    t1 = alert.next_attempt_at
    assert alert_deliver(alert_id=alert.pk, now=t1).outcome == "failed"
    alert.refresh_from_db()
    assert alert.attempts == 2
    wait2 = (alert.next_attempt_at - timezone.now()).total_seconds()
    assert 4.5 <= wait2 <= 10.5  # doubled

    receiver.start()  # back up
    t2 = alert.next_attempt_at
    assert alert_deliver(alert_id=alert.pk, now=t2).outcome == "sent"
    alert.refresh_from_db()
    assert alert.status == AlertStatus.SENT and alert.attempts == 3 and alert.delivered_at is not None
    assert len(receiver.requests) == 1 and receiver.requests[0]["verified"]


@pytest.mark.django_db
def test_gives_up_after_the_attempt_limit_and_says_so(receiver, alert, settings):
    settings.ALERT_WEBHOOK_MAX_ATTEMPTS = 2
    alert_deliver(alert_id=alert.pk)
    alert.refresh_from_db()
    assert alert_deliver(alert_id=alert.pk, now=alert.next_attempt_at).outcome == "gave_up"
    alert.refresh_from_db()
    assert alert.status == AlertStatus.GAVE_UP and alert.attempts == 2 and alert.last_error
    assert alerts_due(now=timezone.now() + datetime.timedelta(days=1)) == []
    assert AuditEvent.objects.filter(event_type="alert.delivery_given_up").count() == 1


@pytest.mark.django_db
def test_a_claim_that_ran_out_is_sent_again_and_a_late_sender_cannot_overwrite(receiver, alert):
    receiver.start()
    now = timezone.now()
    assert delivery.alert_claim(alert_id=alert.pk, now=now) == 1  # a worker claimed it, then was killed
    assert delivery.alert_claim(alert_id=alert.pk, now=now) is None  # held
    assert alerts_due(now=now) == []
    later = now + datetime.timedelta(seconds=60)
    assert alerts_due(now=later) == [alert.pk]
    assert alert_deliver(alert_id=alert.pk, now=later).outcome == "sent"
    alert.refresh_from_db()
    assert alert.attempts == 2 and alert.status == AlertStatus.SENT
    # The killed worker's late release (attempt 1) matches nothing.
    assert Alert.objects.filter(pk=alert.pk, status=AlertStatus.SENDING, attempts=1).update(
        status=AlertStatus.FAILED) == 0


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_senders_deliver_once(receiver, published, ops):
    receiver.start()
    receiver.delay = 0.5  # both are in flight together
    alert = alert_make(cycle_make(monitor_make(policy=published.policy, user=ops), DAY))
    results, barrier = [], threading.Barrier(2)

    def send():
        try:
            barrier.wait()
            results.append(alert_deliver(alert_id=alert.pk).outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["sent", "skipped"]
    assert len(receiver.requests) == 1
    alert.refresh_from_db()
    assert alert.attempts == 1 and alert.status == AlertStatus.SENT


@pytest.mark.django_db
def test_the_task_retries_itself_after_the_recorded_backoff(receiver, alert):
    from monitoring.tasks import alert_deliver as task

    with pytest.raises(Retry):
        task.run(alert.pk)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.FAILED and alert.attempts == 1


@pytest.mark.django_db
def test_the_sweep_queues_due_alerts(receiver, alert, monkeypatch):
    from monitoring import tasks

    queued = []
    monkeypatch.setattr(tasks, "enqueue_on_commit", lambda name, *args, **kw: queued.append((name, args)))
    assert tasks.alerts_deliver_sweep() == {"queued": [alert.pk]}
    assert queued == [("monitoring.tasks.alert_deliver", (alert.pk,))]


@pytest.mark.django_db
def test_without_a_webhook_alerts_are_marked_not_sent(settings, alert):
    settings.ALERT_WEBHOOK_URL = ""
    assert alert_deliver(alert_id=alert.pk).outcome == "not_sent"
    alert.refresh_from_db()
    assert alert.status == AlertStatus.NOT_SENT and "TOUCHSTONE_ALERT_WEBHOOK_URL" in alert.last_error


@pytest.mark.django_db
def test_acknowledge_is_audited_once_with_a_reason(alert, ops, django_user_model):
    nobody = django_user_model.objects.create_user(username="nobody", password="pw")
    with pytest.raises(PermissionDenied):
        alert_acknowledge(alert=alert, reason="seen", acting_user=nobody)
    with pytest.raises(delivery.AcknowledgeInvalid) as info:
        alert_acknowledge(alert=alert, reason="  ", acting_user=ops)
    assert info.value.extra["field"] == "reason"
    alert_acknowledge(alert=alert, reason="a real rise: escalated to T&S", acting_user=ops)
    alert.refresh_from_db()
    assert alert.acknowledged_by == ops and alert.acknowledge_reason == "a real rise: escalated to T&S"
    event = AuditEvent.objects.get(event_type="alert.acknowledged")
    assert event.actor == ops and event.details == {"reason": "a real rise: escalated to T&S"}
    with pytest.raises(InvalidStateTransition):
        alert_acknowledge(alert=alert, reason="again", acting_user=ops)


@pytest.mark.django_db
def test_cli_ack(alert, ops):
    out = StringIO()
    call_command("monitor", "ack", str(alert.pk), "--reason", "known campaign", "--user", ops.username, "--json",
                 stdout=out)
    document = json.loads(out.getvalue())
    assert document["id"] == alert.pk and document["acknowledged_by"] == ops.username
    assert AuditEvent.objects.filter(event_type="alert.acknowledged", actor=ops).count() == 1
    with pytest.raises(CommandError, match="no alert 999999"):
        call_command("monitor", "ack", "999999", "--reason", "x", "--user", ops.username)
    with pytest.raises(CommandError, match="reason"):
        call_command("monitor", "ack", str(alert.pk), "--reason", "", "--user", ops.username)


@pytest.mark.django_db
def test_a_cycle_advance_queues_its_new_alerts(alert, monkeypatch):
    from types import SimpleNamespace

    from monitoring import tasks

    queued = []
    monkeypatch.setattr("touchstone.tasks.enqueue_on_commit", lambda name, *a, **kw: queued.append((name, a)))
    monkeypatch.setattr(tasks, "cycle_advance_service",
                        lambda cycle_id: SimpleNamespace(claimed=False, state="done", delay=None))
    tasks.cycle_advance.run(alert.cycle_id)  # the advance that raised it (here: a stand-in)
    assert queued == [("monitoring.tasks.alert_deliver", (alert.pk,))]
    Alert.objects.filter(pk=alert.pk).update(status=AlertStatus.SENT)
    assert delivery.alerts_enqueue_pending(cycle_id=alert.cycle_id) == []  # only alerts never tried
