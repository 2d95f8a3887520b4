"""Enqueueing with the broker down fails fast with BrokerUnavailable (503), after the caller's
hook has recorded why (issue 13, item 7)."""

from __future__ import annotations

import time

import pytest
from django.db import transaction

from demo import devstack
from touchstone.errors import BrokerUnavailable, drf_exception_handler
from touchstone.tasks import enqueue_on_commit


@pytest.fixture
def broker_down():
    from conftest import celery_point_at
    from touchstone.celery import app

    url = f"redis://127.0.0.1:{devstack.free_port()}/0"
    saved = app.conf.broker_url, app.conf.result_backend
    celery_point_at(url, url)
    yield url
    celery_point_at(*saved)


@pytest.mark.django_db(transaction=True)
def test_a_down_broker_fails_the_commit_fast_and_calls_the_hook(broker_down):
    reasons: list[str] = []
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable) as caught, transaction.atomic():
        enqueue_on_commit("goldsets.tasks.freeze_watchdog", 60, on_unavailable=reasons.append)
    assert time.monotonic() - started < 5.0  # Celery's defaults retried the result backend for 19 s
    assert reasons == [caught.value.message]
    assert "broker is unreachable" in reasons[0] and "goldsets.tasks.freeze_watchdog" in reasons[0]


def test_the_api_answer_is_503_with_retry_after():
    response = drf_exception_handler(BrokerUnavailable("down", retry_after=12), {})
    assert response.status_code == 503 and response["Retry-After"] == "12"
    assert response.data == {"code": "broker_unavailable", "message": "down", "extra": {}}
