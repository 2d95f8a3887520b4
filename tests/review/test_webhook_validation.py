"""The webhook checks every event against its schema: malformed input, with the right secret,
is a 400 naming the field and stores nothing, never a 500 (issue 13, item 6)."""

from __future__ import annotations

import pytest

from review.models import HumanLabel
from tests.review.test_webhooks import event, post
from tests.review.test_webhooks import queue as queue  # noqa: F401 - the fixture
from touchstone.models import AuditEvent

pytestmark = pytest.mark.django_db


def annotation(**changes) -> dict:
    payload = event("insult", "2026-01-01T00:05:00Z")
    payload["annotation"].update(changes)
    return payload


MALFORMED = [
    ({**event("insult", "2026-01-01T00:05:00Z"), "project": 777}, "project"),
    ({**event("insult", "2026-01-01T00:05:00Z"), "project": {"id": [1]}}, "project.id"),
    ({**event("insult", "2026-01-01T00:05:00Z"), "project": {"id": 10**23}}, "project.id"),
    ({**event("insult", "2026-01-01T00:05:00Z"), "task": {"id": "abc"}}, "task.id"),
    ({**event("insult", "2026-01-01T00:05:00Z"), "annotation": [1]}, "annotation"),
    ({**event("insult", "2026-01-01T00:05:00Z"), "action": "PROJECT_DELETED"}, "action"),
    ({key: value for key, value in event("insult", "2026-01-01T00:05:00Z").items() if key != "annotation"},
     "annotation"),
    (annotation(updated_at="2026-13-45T10:00:00Z"), "annotation.updated_at"),
    (annotation(updated_at="yesterday"), "annotation.updated_at"),
    (annotation(updated_at="2026-01-01T10:00:00"), "annotation.updated_at"),  # naive
    (annotation(updated_at="0001-01-01T00:00:00+05:00"), "annotation.updated_at"),  # before UTC's year 1
    (annotation(created_at="9999-12-31T23:59:59-05:00"), "annotation.created_at"),  # past year 9999
    (annotation(created_at=12), "annotation.created_at"),
    (annotation(result="x"), "annotation.result"),
    (annotation(result=["x"]), "annotation.result.0"),
    (annotation(result=[{"from_name": "label", "value": []}]), "annotation.result.0.value"),
    (annotation(result=[{"from_name": "label", "value": {"choices": "insult"}}]), "annotation.result.0.value.choices"),
    (annotation(result=[{"from_name": "label", "value": {"choices": [{"a": 1}]}}]),
     "annotation.result.0.value.choices.0"),
    (annotation(completed_by="x"), "annotation.completed_by"),
    (annotation(completed_by={"id": "x"}), "annotation.completed_by"),
    (annotation(completed_by=-3), "annotation.completed_by"),
    (annotation(lead_time="abc"), "annotation.lead_time"),
    (annotation(lead_time=-1), "annotation.lead_time"),
    (annotation(id=None), "annotation.id"),
    (annotation(was_cancelled="maybe"), "annotation.was_cancelled"),
    ({"action": "ANNOTATIONS_DELETED", "project": {"id": 7}, "annotations": 5}, "annotations"),
    ({"action": "ANNOTATIONS_DELETED", "project": {"id": 7}, "annotations": [{"id": "x"}]}, "annotations.0.id"),
    ({"action": "ANNOTATIONS_DELETED", "project": {"id": 7}}, "annotations"),
    ([1, 2], "non_field_errors"),
    ("text", "non_field_errors"),
]


@pytest.mark.parametrize(("payload", "field"), MALFORMED, ids=[field for _, field in MALFORMED])
def test_malformed_events_are_400_naming_the_field(client, queue, payload, field):  # noqa: F811
    response = post(client, payload)
    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == "invalid_input" and field in body["extra"]["fields"], body
    assert body["message"].startswith(f"{field}: ")
    assert not HumanLabel.objects.exists()
    assert not AuditEvent.objects.filter(event_type__startswith="review_queue.webhook_").exists()


def test_bodies_that_are_not_json_are_400(client, queue):  # noqa: F811
    for body in ("{", "[" * 100_000, b"\xff\xfe"):
        response = client.post("/hooks/label-studio/", data=body, content_type="application/json",
                               HTTP_X_TOUCHSTONE_WEBHOOK_SECRET="s3cret")
        assert response.status_code == 400 and response.json()["code"] == "invalid_input"


def test_well_formed_events_in_their_other_forms_are_stored(client, queue):  # noqa: F811
    # A user object for completed_by, the task only in annotation.task, an offset instead of Z,
    # a null lead time and fields Touchstone does not read.
    payload = annotation(completed_by={"id": 3, "email": "a@b.c"}, task=70, lead_time=None,
                         updated_at="2026-01-01T02:05:00+02:00", ground_truth=False)
    payload["task"] = None
    payload["project"]["title"] = "q (V)"
    response = post(client, payload)
    assert response.status_code == 200 and response.json() == {"stored": "created", "queue": "q"}
    label = HumanLabel.objects.get()
    assert label.labeler.ls_user_id == 3 and label.seconds_spent is None and label.label == "insult"
    assert label.labeled_at.isoformat() == "2026-01-01T00:05:00+00:00"
    deleted = post(client, {"action": "ANNOTATIONS_DELETED", "project": {"id": 7}, "annotations": [{"id": 5}]})
    assert deleted.json()["stored"] == "deleted" and not HumanLabel.objects.exists()


def test_an_unreadable_choice_is_stored_as_an_invalid_label_not_refused(client, queue):  # noqa: F811
    # Well-formed but outside the taxonomy: the schema accepts it, the queue records why it is invalid.
    response = post(client, annotation(result=[{"from_name": "label", "value": {"choices": ["nonsense"]}}]))
    assert response.json()["stored"] == "invalid"
    assert "not in the taxonomy" in HumanLabel.objects.get().invalid_reason
