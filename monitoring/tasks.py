"""Celery tasks of monitors: thin shells over ``monitoring.services``. Payloads are ids only.

``monitor_tick`` (beat) makes due cycles and re-queues stalled ones; ``cycle_advance`` claims a
cycle, works one stage, and queues itself again (with a countdown while the cycle waits). Both
run on the ``default`` queue; the labeling work a cycle starts runs on ``llm``, its pushes on
the caller's worker through the review services.
"""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from monitoring.services.cycles import cycle_advance as cycle_advance_service
from monitoring.services.delivery import alert_deliver as alert_deliver_service
from monitoring.services.delivery import alerts_due, alerts_enqueue_pending
from monitoring.services.monitors import ADVANCE_TASK, monitors_tick
from touchstone.retry import TASK_RETRY
from touchstone.tasks import enqueue_on_commit

TRANSIENT = (OperationalError,)
ALERT_DELIVER_TASK = "monitoring.tasks.alert_deliver"


@shared_task(acks_late=True, reject_on_worker_lost=True, autoretry_for=TRANSIENT, max_retries=30, **TASK_RETRY)
def cycle_advance(cycle_id: int) -> dict[str, object]:
    """Advance one cycle by one stage; redelivered or duplicated messages find the cycle claimed
    or the stage's work already made."""
    result = cycle_advance_service(cycle_id=cycle_id)
    alerts_enqueue_pending(cycle_id=cycle_id)  # the alerts it raised go out now (the sweep catches any missed)
    if result.claimed and result.delay is not None:
        enqueue_on_commit(ADVANCE_TASK, cycle_id, countdown=result.delay or None)
    return {"claimed": result.claimed, "state": result.state, "delay": result.delay}


@shared_task(acks_late=True)
def monitor_tick() -> dict[str, list[int]]:
    tick = monitors_tick()
    return {"created": tick.created, "requeued": tick.requeued}


@shared_task(bind=True, acks_late=True, autoretry_for=TRANSIENT, max_retries=None, **TASK_RETRY)
def alert_deliver(self, alert_id: int) -> dict[str, object]:
    """One attempt to POST the alert to the webhook; a failed attempt retries itself after the
    backoff the service recorded on the alert (the row counts attempts and gives up, not Celery)."""
    delivery = alert_deliver_service(alert_id=alert_id)
    if delivery.outcome == "failed":
        raise self.retry(countdown=delivery.retry_in)
    return {"outcome": delivery.outcome, "attempt": delivery.attempt}


@shared_task(acks_late=True)
def alerts_deliver_sweep() -> dict[str, list[int]]:
    """Beat: queue every alert that is due (pending, failed and due, or a sender's claim ran out)."""
    due = alerts_due()
    for alert_id in due:
        enqueue_on_commit(ALERT_DELIVER_TASK, alert_id)
    return {"queued": due}
