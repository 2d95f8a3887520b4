"""Celery tasks of the evaluation app (``default`` queue). Payloads are ids only."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from evaluation.services import signal_version_from_run
from runs.selectors import labeling_run_get
from touchstone.retry import TASK_RETRY


@shared_task(acks_late=True, reject_on_worker_lost=True, autoretry_for=(OperationalError,), **TASK_RETRY)
def signal_version_from_run_task(run_id: int) -> dict[str, object]:
    """Make (or complete) the signal version of a finished labeling run. Idempotent."""
    version, added = signal_version_from_run(run=labeling_run_get(name_or_id=str(run_id)))
    return {"version": str(version), "added": added}
