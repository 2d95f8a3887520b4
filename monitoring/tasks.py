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
from monitoring.services.monitors import ADVANCE_TASK, monitors_tick
from touchstone.retry import TASK_RETRY
from touchstone.tasks import enqueue_on_commit

TRANSIENT = (OperationalError,)


@shared_task(acks_late=True, reject_on_worker_lost=True, autoretry_for=TRANSIENT, max_retries=30, **TASK_RETRY)
def cycle_advance(cycle_id: int) -> dict[str, object]:
    """Advance one cycle by one stage; redelivered or duplicated messages find the cycle claimed
    or the stage's work already made."""
    result = cycle_advance_service(cycle_id=cycle_id)
    if result.claimed and result.delay is not None:
        enqueue_on_commit(ADVANCE_TASK, cycle_id, countdown=result.delay or None)
    return {"claimed": result.claimed, "state": result.state, "delay": result.delay}


@shared_task(acks_late=True)
def monitor_tick() -> dict[str, list[int]]:
    tick = monitors_tick()
    return {"created": tick.created, "requeued": tick.requeued}
