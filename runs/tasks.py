"""Celery tasks for labeling runs: thin shells over services. Payloads are ids only.

Transient trouble (the endpoint down or throttling hard, a locked SQLite database) is retried
by Celery with the one backoff policy (``touchstone.retry``); finished pairs are skipped, so a
retry or a redelivery never judges a pair twice.
"""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from runs.services.batches import labeling_run_batch_poll, labeling_run_batch_submit, poll_delay
from runs.services.runs import labeling_run_watchdog
from runs.services.work import EndpointUnavailable, labeling_run_chunk_execute
from touchstone.retry import TASK_RETRY

TRANSIENT = (EndpointUnavailable, OperationalError)


@shared_task(acks_late=True, reject_on_worker_lost=True, autoretry_for=TRANSIENT, max_retries=30, **TASK_RETRY)
def llm_run_chunk(run_id: int, item_ids: list[int]) -> dict[str, object]:
    """Judge one chunk of a run. Redelivery and re-runs skip finished pairs."""
    outcome = labeling_run_chunk_execute(run_id=run_id, item_ids=item_ids)
    return {"written": outcome.written, "pending": outcome.pending, "skipped": outcome.skipped}


@shared_task(acks_late=True)
def llm_runs_watchdog(stale_after_seconds: float = 600) -> list[str]:
    return labeling_run_watchdog(stale_after_seconds=stale_after_seconds)


@shared_task(acks_late=True, reject_on_worker_lost=True, autoretry_for=TRANSIENT, max_retries=30, **TASK_RETRY)
def llm_batch_submit(run_id: int, item_ids: list[int]) -> list[int]:
    """Submit a chunk to the Batch API and schedule the polls of its batches."""
    batch_ids = labeling_run_batch_submit(run_id=run_id, item_ids=item_ids)
    for batch_id in batch_ids:
        llm_batch_poll.apply_async((batch_id,), countdown=poll_delay(0))
    return batch_ids


@shared_task(acks_late=True, reject_on_worker_lost=True, autoretry_for=TRANSIENT, max_retries=60, **TASK_RETRY)
def llm_batch_poll(batch_id: int) -> float | None:
    """Poll one batch; reschedules itself until the batch is ingested or over."""
    delay = labeling_run_batch_poll(batch_id=batch_id)
    if delay is not None:
        llm_batch_poll.apply_async((batch_id,), countdown=delay)
    return delay
