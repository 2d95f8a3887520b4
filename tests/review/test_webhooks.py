"""The webhook endpoint: the shared secret, duplicates and out-of-order deliveries."""

from __future__ import annotations

import json

import pytest

from content.models import ContentItem
from review.lsconfig import annotation_result
from review.models import HumanLabel, ReviewQueue, ReviewTask, Vendor
from touchstone.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def queue(published, settings):
    settings.LABEL_STUDIO_WEBHOOK_SECRET = "s3cret"
    queue = ReviewQueue.objects.create(name="q", policy_version=published, vendor=Vendor.objects.create(name="V"),
                                       overlap=2, ls_project_id=7)
    item = ContentItem.objects.create(source="s", external_id="1", parts={"text": "x"}, content_sha256="a" * 64)
    ReviewTask.objects.create(queue=queue, item=item, ls_task_id=70, status="open")
    return queue


def event(label: str, updated_at: str, annotation_id: int = 5, action: str = "ANNOTATION_UPDATED") -> dict:
    return {"action": action, "project": {"id": 7}, "task": {"id": 70},
            "annotation": {"id": annotation_id, "completed_by": 3, "result": annotation_result(label),
                           "updated_at": updated_at, "created_at": "2026-01-01T00:00:00Z", "lead_time": 3.0}}


def post(client, payload, secret="s3cret"):
    headers = {"HTTP_X_TOUCHSTONE_WEBHOOK_SECRET": secret} if secret is not None else {}
    return client.post("/hooks/label-studio/", data=json.dumps(payload), content_type="application/json", **headers)


def test_wrong_or_missing_secret_is_403_and_stores_nothing(client, queue):
    assert post(client, event("insult", "2026-01-01T00:00:01Z"), secret="nope").status_code == 403
    assert post(client, event("insult", "2026-01-01T00:00:01Z"), secret=None).status_code == 403
    assert not HumanLabel.objects.exists()


def test_duplicates_and_out_of_order_deliveries_keep_one_label_the_newest(client, queue):
    newer = event("threat", "2026-01-01T00:05:00Z")
    older = event("insult", "2026-01-01T00:01:00Z", action="ANNOTATION_CREATED")
    assert post(client, newer).json()["stored"] == "created"
    assert post(client, newer).json()["stored"] == "unchanged"  # a replay changes nothing
    assert post(client, {**newer, "annotation": {**newer["annotation"], "lead_time": 9.0}}).json()["stored"] == \
        "updated"
    assert post(client, older).json()["stored"] == "ignored"
    label = HumanLabel.objects.get()
    assert label.label == "threat" and label.labeler.ls_user_id == 3 and label.external_ref == "5"
    deleted = post(client, {"action": "ANNOTATIONS_DELETED", "project": {"id": 7}, "annotations": [{"id": 5}]})
    assert deleted.json()["stored"] == "deleted" and not HumanLabel.objects.exists()
    # Each stored label is audited; an ignored (older) delivery is not.
    assert list(AuditEvent.objects.filter(event_type__startswith="review_queue.webhook_").order_by("pk")
                .values_list("event_type", flat=True)) == [
        "review_queue.webhook_label_created", "review_queue.webhook_label_updated",
        "review_queue.webhook_labels_deleted"]


def test_events_for_unknown_projects_or_tasks_are_ignored(client, queue):
    elsewhere = {**event("insult", "2026-01-01T00:00:01Z"), "project": {"id": 99}}
    assert post(client, elsewhere).json()["stored"] == "unknown"
    assert post(client, [1, 2]).status_code == 400  # not an event (test_webhook_validation)
    assert client.post("/hooks/label-studio/", data="{", content_type="application/json",
                       HTTP_X_TOUCHSTONE_WEBHOOK_SECRET="s3cret").status_code == 400


def test_queues_page_counts_tasks_and_labelers(admin_client, client, queue, django_assert_max_num_queries):
    post(client, event("insult", "2026-01-01T00:05:00Z"))
    with django_assert_max_num_queries(11):  # constant: no query per queue or labeler
        page = admin_client.get("/queues/").content.decode()
    assert 'id="queue-q"' in page and "ls-user-3" in page
    assert 'In progress</div><div class="v">1<' in page and 'Done</div><div class="v">0<' in page
