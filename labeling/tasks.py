"""Celery tasks for labeling: thin shells over services. Payloads are ids only."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from labeling.services.runs import (
    EndpointUnavailable,
    labeling_run_chunk_execute,
    labeling_run_watchdog,
    wait_seconds_for,
)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=30)
def llm_run_chunk(self, run_id: int, item_ids: list[int]) -> dict[str, object]:
    """Judge one chunk of a run. Redelivery and re-runs skip finished pairs."""
    try:
        outcome = labeling_run_chunk_execute(run_id=run_id, item_ids=item_ids)
    except EndpointUnavailable as exc:
        # The endpoint is down or throttling hard: wait, with a growing delay, never spin.
        raise self.retry(exc=exc, countdown=wait_seconds_for(self.request.retries)) from exc
    except OperationalError as exc:  # e.g. a locked SQLite database under load
        raise self.retry(exc=exc, countdown=wait_seconds_for(self.request.retries)) from exc
    return {"written": outcome.written, "pending": outcome.pending, "skipped": outcome.skipped}


@shared_task(acks_late=True)
def llm_runs_watchdog(stale_after_seconds: float = 600) -> list[str]:
    return labeling_run_watchdog(stale_after_seconds=stale_after_seconds)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=30)
def llm_batch_submit(self, run_id: int, item_ids: list[int]) -> list[int]:
    """Submit a chunk to the Batch API and schedule the polls of its batches."""
    from labeling.services.batches import labeling_run_batch_submit, poll_delay

    try:
        batch_ids = labeling_run_batch_submit(run_id=run_id, item_ids=item_ids)
    except EndpointUnavailable as exc:
        raise self.retry(exc=exc, countdown=wait_seconds_for(self.request.retries)) from exc
    for batch_id in batch_ids:
        llm_batch_poll.apply_async((batch_id,), countdown=poll_delay(0))
    return batch_ids


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=60)
def llm_batch_poll(self, batch_id: int) -> float | None:
    """Poll one batch; reschedules itself until the batch is ingested or over."""
    from labeling.services.batches import labeling_run_batch_poll

    try:
        delay = labeling_run_batch_poll(batch_id=batch_id)
    except EndpointUnavailable as exc:
        raise self.retry(exc=exc, countdown=wait_seconds_for(self.request.retries)) from exc
    if delay is not None:
        llm_batch_poll.apply_async((batch_id,), countdown=delay)
    return delay


@shared_task(acks_late=True)
def sync_review_queues() -> dict[str, str]:
    """The periodic reconcile: every annotation changed since each queue's last sync."""
    from labeling.services.queues import review_queues_reconcile

    return review_queues_reconcile()
