"""Review queues against a real Label Studio: project per queue, idempotent pushes (also after
an interrupted push), labels back by reconcile with k-overlap, invalid labels kept as invalid,
the newest version winning, and a project deleted by hand."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from content.models import ContentItem
from review.labelstudio import ProjectMissing
from review.lsconfig import annotation_result, task_data
from review.models import HumanLabel, ReviewTask
from review.services.queues import (
    queue_config_spec,
    review_queue_create,
    review_queue_push,
    review_queue_recreate_project,
    review_queue_status,
    review_queue_sync,
)
from touchstone.models import AuditEvent

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def items():
    return ContentItem.objects.bulk_create([ContentItem(source="q", external_id=str(i), parts={"text": f"msg {i}"},
                                                        content_sha256=f"{i:064x}") for i in range(4)])


def test_push_is_idempotent_and_labels_come_back_with_overlap(ls, published, items):
    queue = review_queue_create(name="acme-review", policy_version=published, vendor_name="Acme BPO", overlap=2)
    project = ls.project_get(queue.ls_project_id)
    assert project.maximum_annotations == 2 and "harassment" in project.expert_instruction.lower()
    first = review_queue_push(queue=queue, item_ids=[i.pk for i in items])
    assert (first.added, first.pushed) == (4, 4)
    assert review_queue_push(queue=queue, item_ids=[i.pk for i in items]).pushed == 0
    assert len(list(ls.tasks_with_annotations(queue.ls_project_id))) == 4

    users = [ls.user_create(email=f"labeler{n}@acme.test", name=f"Labeler {n}") for n in range(3)]
    tasks = {t.item_id: t.ls_task_id for t in ReviewTask.objects.filter(queue=queue)}
    first_item, second_item = items[0].pk, items[1].pk
    ls.annotation_create(tasks[first_item], annotation_result("insult", ["HAR-1"], "rude"), completed_by=users[0],
                         lead_time=12.5)
    ls.annotation_create(tasks[first_item], annotation_result("insult"), completed_by=users[1])
    ls.annotation_create(tasks[first_item], annotation_result("threat"), completed_by=users[2])  # past k
    bad = ls.annotation_create(tasks[second_item], annotation_result("spam"), completed_by=users[0])
    result = review_queue_sync(queue=queue)
    assert (result.created, result.invalid, result.ignored, result.completed) == (2, 1, 1, 1)
    labels = HumanLabel.objects.filter(queue=queue, item_id=first_item).order_by("labeler__ls_user_id")
    assert [lab.label for lab in labels] == ["insult", "insult"] and labels[0].seconds_spent == 12.5
    assert labels[0].rule_ids == ["HAR-1"] and labels[0].source == "label_studio"
    invalid = HumanLabel.objects.get(queue=queue, item_id=second_item)
    assert not invalid.is_valid and invalid.label == "spam" and "not in the taxonomy" in invalid.invalid_reason
    assert ReviewTask.objects.get(queue=queue, item_id=first_item).status == "complete"

    ls.annotation_update(bad, annotation_result("insult"))  # the labeler fixes it
    again = review_queue_sync(queue=queue)
    assert again.updated >= 1
    fixed = HumanLabel.objects.get(queue=queue, item_id=second_item)
    assert fixed.is_valid and fixed.label == "insult"
    assert HumanLabel.objects.filter(queue=queue).count() == 3  # syncing twice duplicates nothing
    assert review_queue_status(queue=queue)["complete"] == 1

    # Pushes and syncs are audited: one event per push and per sync, with the counts.
    events = AuditEvent.objects.filter(object_type="review.ReviewQueue", object_id=str(queue.pk))
    pushed = [e.details for e in events.filter(event_type="review_queue.pushed").order_by("pk")]
    assert [d["pushed"] for d in pushed] == [4, 0]
    synced = [e.details for e in events.filter(event_type="review_queue.synced").order_by("pk")]
    assert len(synced) == 2 and (synced[0]["created"], synced[0]["invalid"]) == (2, 1) and synced[1]["updated"] >= 1


def test_an_interrupted_push_is_recovered_without_duplicates(ls, published, items):
    queue = review_queue_create(name="crashy", policy_version=published, vendor_name="Acme BPO", overlap=1)
    review_queue_push(queue=queue, item_ids=[items[0].pk])
    # A push that imported its batch and died before saving the ids:
    spec = queue_config_spec(published)
    row = ReviewTask.objects.create(queue=queue, item=items[1], status="importing")
    ls.tasks_import(queue.ls_project_id, [{"data": {**task_data(items[1].parts, spec), "touchstone_task": row.pk}}])
    result = review_queue_push(queue=queue, item_ids=[items[1].pk, items[2].pk])
    assert result.recovered == 1 and result.pushed == 1
    assert len(list(ls.tasks_with_annotations(queue.ls_project_id))) == 3
    assert ReviewTask.objects.filter(queue=queue, ls_task_id__isnull=True).count() == 0


def test_a_project_deleted_by_hand_is_named_and_can_be_recreated(ls, published, items):
    queue = review_queue_create(name="gone", policy_version=published, vendor_name="Acme BPO")
    review_queue_push(queue=queue, item_ids=[items[0].pk])
    ls.project_delete(queue.ls_project_id)
    with pytest.raises(ProjectMissing, match="queue recreate"):
        review_queue_push(queue=queue, item_ids=[items[1].pk])
    with pytest.raises(CommandError, match="does not exist"):
        call_command("queue", "sync", "gone", stdout=StringIO())
    queue = review_queue_recreate_project(queue=queue)
    assert review_queue_push(queue=queue).pushed == 2
    out = StringIO()
    call_command("queue", "status", "gone", stdout=out)
    assert "pending 2" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_label_studio_webhooks_store_labels_as_they_are_made(ls, published, items, live_server, settings):
    settings.LABEL_STUDIO_WEBHOOK_URL = f"{live_server.url}/hooks/label-studio/"
    settings.LABEL_STUDIO_WEBHOOK_SECRET = "hook-secret"
    queue = review_queue_create(name="hooked", policy_version=published, vendor_name="Acme BPO", overlap=1)
    review_queue_push(queue=queue, item_ids=[items[0].pk])
    task = ReviewTask.objects.get(queue=queue)
    user = ls.user_create(email="hooked@acme.test", name="Hooked")
    ls.annotation_create(task.ls_task_id, annotation_result("insult"), completed_by=user)
    label = HumanLabel.objects.get(queue=queue)  # stored by the webhook, before any sync
    assert label.label == "insult" and ReviewTask.objects.get(pk=task.pk).status == "complete"
    assert review_queue_sync(queue=queue).created == 0


def test_disagreements_go_to_adjudication_and_the_adjudicated_label_is_final(ls, published, items):
    from goldsets.freeze import FreezeRule
    from goldsets.models import GoldenItem
    from goldsets.services import goldset_version_build, goldset_version_freeze_request

    experts = review_queue_create(name="experts", policy_version=published, vendor_name="Expert Pool", overlap=1,
                                  purpose="adjudication")
    queue = review_queue_create(name="bpo", policy_version=published, vendor_name="Acme BPO", overlap=2,
                                adjudication_queue="experts")
    review_queue_push(queue=queue, item_ids=[items[0].pk, items[1].pk])
    tasks = {t.item_id: t.ls_task_id for t in ReviewTask.objects.filter(queue=queue)}
    a, b, judge = (ls.user_create(email=f"{n}@adj.test", name=n) for n in ("ann-a", "ann-b", "judge"))
    ls.annotation_create(tasks[items[0].pk], annotation_result("insult"), completed_by=a)
    ls.annotation_create(tasks[items[0].pk], annotation_result("threat"), completed_by=b)  # they disagree
    ls.annotation_create(tasks[items[1].pk], annotation_result("insult"), completed_by=a)
    ls.annotation_create(tasks[items[1].pk], annotation_result("insult"), completed_by=b)  # they agree
    assert review_queue_sync(queue=queue).escalated == 1
    assert review_queue_sync(queue=queue).escalated == 0  # once
    (escalation,) = AuditEvent.objects.filter(event_type="review_queue.escalated", object_id=str(queue.pk))
    assert escalation.details == {"adjudication_queue": "experts", "items": 1, "rule": queue.disagreement_rule}
    (adjudication_task,) = ReviewTask.objects.filter(queue=experts)
    assert adjudication_task.item_id == items[0].pk
    ls.annotation_create(adjudication_task.ls_task_id, annotation_result("threat"), completed_by=judge)
    review_queue_sync(queue=experts)
    final = HumanLabel.objects.get(queue=experts)
    assert final.role == "adjudication" and final.label == "threat"
    version = goldset_version_build(version_id=goldset_version_freeze_request(
        name="adjudicated", policy_version=published, rule=FreezeRule(min_labels=2)).pk)
    gold = {g.item_id: (g.gold_label, g.decided_by) for g in GoldenItem.objects.filter(version=version)}
    assert gold == {items[0].pk: ("threat", "adjudicated"), items[1].pk: ("insult", "unanimous")}
    lineage = GoldenItem.objects.get(version=version, item_id=items[0].pk).lineage
    assert lineage["queues"] == ["bpo", "experts"] and lineage["policy_version"] == str(published)
    from goldsets.exports import lineage_of

    assert version.lineage_summary == lineage_of(version)  # what the manifest shows, recorded at freeze time
