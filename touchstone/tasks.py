"""Enqueueing Celery tasks from services.

Services name the task they enqueue ("runs.tasks.llm_run_chunk") instead of importing it: the
task module imports the services, so an import the other way would be a cycle. The name is
resolved in Celery's registry when the transaction commits, so eager mode and routing apply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Task, current_app
from django.db import transaction
from kombu.exceptions import OperationalError as BrokerError

from touchstone.errors import BrokerUnavailable

# A broker that refuses connections fails the publish in well under a second: two quick
# retries ride out a blip, not an outage (Celery's default retries a down broker for seconds).
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


def registered_task(task_name: str) -> Task:
    """The task registered under this name; the apps' task modules are imported when needed
    (a worker imports them at start, a web or shell process only on first use)."""
    if task_name not in current_app.tasks:
        current_app.loader.import_default_modules()
    return current_app.tasks[task_name]


def enqueue_on_commit(task_name: str, *args: Any, countdown: float | None = None,
                      on_unavailable: Callable[[str], None] | None = None) -> None:
    """Send ``task_name(*args)`` once the current transaction commits (at once outside one).

    When the broker cannot be reached, ``on_unavailable(reason)`` runs (to record the failure
    on the job's row, in its own transaction; it may raise a BrokerUnavailable of its own that
    names the job) and BrokerUnavailable reaches the caller of the committing block.

    Results are not kept in the result backend (job state lives on database rows), so
    publishing does not wait on the result backend either, which retries a down Redis for 19 s.
    """
    task = registered_task(task_name)  # an unknown name fails here, in the caller, not after the commit
    options: dict[str, Any] = {} if countdown is None else {"countdown": countdown}

    def send() -> None:
        try:
            task.apply_async(args, ignore_result=True, retry=True, retry_policy=PUBLISH_RETRY_POLICY, **options)
        except BrokerError as exc:
            reason = f"the task broker is unreachable ({exc}); {task_name} was not sent"
            if on_unavailable is not None:
                on_unavailable(reason)
            raise BrokerUnavailable(reason) from exc

    transaction.on_commit(send)
