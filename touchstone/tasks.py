"""Enqueueing Celery tasks from services.

Services name the task they enqueue ("runs.tasks.llm_run_chunk") instead of importing it: the
task module imports the services, so an import the other way would be a cycle. The name is
resolved in Celery's registry when the transaction commits, so eager mode and routing apply.
"""

from __future__ import annotations

from typing import Any

from celery import Task, current_app
from django.db import transaction


def registered_task(task_name: str) -> Task:
    """The task registered under this name; the apps' task modules are imported when needed
    (a worker imports them at start, a web or shell process only on first use)."""
    if task_name not in current_app.tasks:
        current_app.loader.import_default_modules()
    return current_app.tasks[task_name]


def enqueue_on_commit(task_name: str, *args: Any, countdown: float | None = None) -> None:
    """Send ``task_name(*args)`` once the current transaction commits (at once outside one)."""
    task = registered_task(task_name)  # an unknown name fails here, in the caller, not after the commit
    options = {} if countdown is None else {"countdown": countdown}
    transaction.on_commit(lambda: task.apply_async(args, **options))
