"""A freeze requested while the broker is down: the request fails at once with the reason, the
API answers 503 JSON with Retry-After, the CLI says so and exits non-zero (issue 13, item 7)."""

from __future__ import annotations

import time

import pytest
from django.core.management import CommandError, call_command

from demo import devstack
from goldsets.freeze import FreezeRule
from goldsets.models import GoldenSetVersion
from goldsets.services import goldset_version_freeze_request
from tests.goldsets.api.test_api import client_for
from touchstone.errors import BrokerUnavailable
from touchstone.models import AuditEvent

pytestmark = pytest.mark.django_db

FAST = 5.0  # seconds; before the fix the publish retried the result backend for 19 s


@pytest.fixture
def broker_down(settings):
    """The Celery app points at a loopback port nothing listens on."""
    from conftest import celery_point_at
    from touchstone.celery import app

    url = f"redis://127.0.0.1:{devstack.free_port()}/0"
    saved = app.conf.broker_url, app.conf.result_backend
    settings.CELERY_BROKER_URL = settings.CELERY_RESULT_BACKEND = url
    celery_point_at(url, url)
    yield url
    celery_point_at(*saved)


def test_the_request_fails_at_once_with_the_reason(labelled, published, broker_down,
                                                   django_capture_on_commit_callbacks):
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable) as caught, django_capture_on_commit_callbacks(execute=True):
        goldset_version_freeze_request(name="gs", policy_version=published, rule=FreezeRule(), on_worker=True)
    assert time.monotonic() - started < FAST
    version = GoldenSetVersion.objects.get()
    assert version.status == "failed" and "broker is unreachable" in version.failure_reason
    assert caught.value.status == 503 and caught.value.extra == {"freeze_id": version.pk, "status": "failed"}
    assert AuditEvent.objects.filter(event_type="goldset.freeze_failed", object_id=str(version.pk)).exists()


@pytest.mark.django_db(transaction=True)
def test_the_api_answers_503_json_with_retry_after(labelled, published, broker_down, django_user_model):
    client, _ = client_for(django_user_model, "labeling ops", "write")
    started = time.monotonic()
    response = client.post("/api/v1/goldsets/gs/freeze/", {"policy": "harassment"}, format="json")
    assert time.monotonic() - started < FAST
    assert response.status_code == 503 and response["Content-Type"] == "application/json"
    assert int(response["Retry-After"]) > 0
    body = response.json()
    version = GoldenSetVersion.objects.get()
    assert body["code"] == "broker_unavailable" and body["extra"]["freeze_id"] == version.pk
    assert version.status == "failed" and version.failure_reason in body["message"]
    status = client.get(f"/api/v1/goldsets/gs/freezes/{version.pk}/").json()
    assert status["status"] == "failed" and "broker is unreachable" in status["failure_reason"]


@pytest.mark.django_db(transaction=True)
def test_the_cli_says_so_and_exits_non_zero(labelled, published, broker_down, django_user_model):
    from django.contrib.auth.models import Group

    ops = django_user_model.objects.create_user("ops")
    ops.groups.add(Group.objects.get(name="labeling ops"))
    with pytest.raises(CommandError) as caught:
        call_command("goldset", "freeze", "gs", "--policy", "harassment", "--worker", "--user", "ops")
    assert "broker is unreachable" in str(caught.value) and "drop --worker" in str(caught.value)
    assert GoldenSetVersion.objects.get().status == "failed"


