"""The Celery app: JSON only, late acks, queues by kind (llm, sync, freeze, default)."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "touchstone.settings")

app = Celery("touchstone")
app.config_from_object("django.conf:settings", namespace="CELERY")

QUEUES = ("default", "llm", "sync", "freeze")

app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_accept_content=["json"],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_time_limit=30 * 60,
    task_soft_time_limit=25 * 60,
    task_default_queue="default",
    task_queues=[Queue(name) for name in QUEUES],
    # Routing by task-name prefix keeps each app's tasks on the queue of their kind.
    task_routes={
        "runs.tasks.llm_*": {"queue": "llm"},
        "review.tasks.sync_*": {"queue": "sync"},
        "goldsets.tasks.freeze_*": {"queue": "freeze"},
    },
    broker_connection_retry_on_startup=True,
    # Longer than any task may run, so a late-acked message is not redelivered mid-task.
    broker_transport_options={"visibility_timeout": 60 * 60},
    result_expires=24 * 60 * 60,
    worker_hijack_root_logger=False,
    # A run whose workers went quiet (a crash, a lost message) has its pending work re-queued.
    beat_schedule={
        "llm-runs-watchdog": {"task": "runs.tasks.llm_runs_watchdog", "schedule": 120.0,
                              "kwargs": {"stale_after_seconds": 300}},
        "review-queues-reconcile": {"task": "review.tasks.sync_review_queues", "schedule": 300.0},
        # Past the task hard time limit (30 min), a building freeze can only be a lost one.
        "goldset-freeze-watchdog": {"task": "goldsets.tasks.freeze_watchdog", "schedule": 600.0,
                                    "kwargs": {"stale_after_seconds": 3600}},
    },
    timezone="UTC",
)
app.autodiscover_tasks()
