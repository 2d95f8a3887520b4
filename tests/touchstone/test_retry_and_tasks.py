"""The one retry policy, and enqueueing tasks by name."""

from __future__ import annotations

import random

import pytest
from celery.exceptions import NotRegistered
from django.db import transaction

from touchstone.retry import TASK_RETRY, backoff_seconds
from touchstone.tasks import enqueue_on_commit, registered_task


def test_backoff_doubles_from_its_base_up_to_its_cap() -> None:
    waits = [backoff_seconds(attempt, base=0.5, cap=30, jitter=False) for attempt in range(1, 10)]
    assert waits == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]


def test_jitter_draws_from_the_upper_half_and_retry_after_wins() -> None:
    random.seed(7)
    draws = [backoff_seconds(4, base=1, cap=30) for _ in range(2_000)]
    assert 4 <= min(draws) < 4.1 and 7.9 < max(draws) <= 8  # [d/2, d] with d = 8
    told = [backoff_seconds(9, base=1, cap=30, retry_after=3.0) for _ in range(200)]
    assert all(3.0 <= wait <= 3.25 for wait in told)


def test_tasks_that_retry_use_the_policy() -> None:
    from runs.services.work import EndpointUnavailable

    for name in ("runs.tasks.llm_run_chunk", "runs.tasks.llm_batch_submit", "runs.tasks.llm_batch_poll",
                 "policies.tasks.prompt_version_compile_all_task"):
        task = registered_task(name)
        assert (task.retry_backoff, task.retry_backoff_max, task.retry_jitter) == (
            TASK_RETRY["retry_backoff"], TASK_RETRY["retry_backoff_max"], TASK_RETRY["retry_jitter"]), name
    assert EndpointUnavailable in registered_task("runs.tasks.llm_run_chunk").autoretry_for


@pytest.mark.django_db(transaction=True)
def test_an_unknown_task_name_fails_in_the_caller_not_after_the_commit() -> None:
    with pytest.raises(NotRegistered), transaction.atomic():
        enqueue_on_commit("runs.tasks.no_such_task", 1)
