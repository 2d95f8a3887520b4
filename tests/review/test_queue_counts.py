"""Label Studio's own counters agree with Touchstone's (issue 13, item 16): a task whose extra
slot (for a label that did not count) is no longer needed shows done in Label Studio too; and
paging through tasks never asks Label Studio for a page past the end."""

from __future__ import annotations

from pathlib import Path

import pytest

from content.models import ContentItem
from review import labelstudio
from review.lsconfig import annotation_result
from review.models import ReviewTask
from review.services.queues import review_queue_create, review_queue_push, review_queue_status, review_queue_sync

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def _items(prefix: str, n: int) -> list[ContentItem]:
    return ContentItem.objects.bulk_create([
        ContentItem(source=prefix, external_id=str(i), parts={"text": f"{prefix} {i}"},
                    content_sha256=f"{prefix}{i}".encode().hex().ljust(64, "0")[:64]) for i in range(n)])


def _label_studio_done(ls, queue) -> int:
    return ls.project_get(queue.ls_project_id).finished_task_number


def test_a_fixed_label_gives_back_its_extra_slot_and_both_counters_say_done(ls, published):
    items = _items("fix", 2)
    queue = review_queue_create(name="count-fix", policy_version=published, vendor_name="Acme BPO", overlap=2)
    review_queue_push(queue=queue, item_ids=[i.pk for i in items])
    first, second = (ReviewTask.objects.get(queue=queue, item=item).ls_task_id for item in items)
    a, b, c = (ls.user_create(email=f"count-{n}@acme.test", name=n) for n in "abc")

    wrong = ls.annotation_create(first, annotation_result("spam"), completed_by=a)  # not in the taxonomy
    ls.annotation_create(second, annotation_result("insult"), completed_by=a)
    ls.annotation_create(second, annotation_result("insult"), completed_by=b)
    review_queue_sync(queue=queue)  # the invalid label does not count: the first task gets a third slot
    assert ReviewTask.objects.get(queue=queue, item=items[0]).extra_slots == 1
    assert (review_queue_status(queue=queue)["complete"], _label_studio_done(ls, queue)) == (1, 1)

    ls.annotation_update(wrong, annotation_result("insult"))  # the labeler fixes it
    ls.annotation_create(first, annotation_result("insult"), completed_by=b)
    review_queue_sync(queue=queue)
    assert review_queue_status(queue=queue)["complete"] == 2
    assert ReviewTask.objects.get(queue=queue, item=items[0]).extra_slots == 0
    assert _label_studio_done(ls, queue) == 2  # was 1: Label Studio still waited for the third slot

    ls.annotation_create(first, annotation_result("insult"), completed_by=c)  # a third, past k
    review_queue_sync(queue=queue)
    assert (review_queue_status(queue=queue)["complete"], _label_studio_done(ls, queue)) == (2, 2)


@pytest.mark.parametrize("tasks", [4, 5])
def test_listing_tasks_stops_at_the_total(ls, published, label_studio, monkeypatch, tasks):
    monkeypatch.setattr(labelstudio, "PAGE_SIZE", 2)
    items = _items(f"page{tasks}", tasks)
    queue = review_queue_create(name=f"count-pages-{tasks}", policy_version=published, vendor_name="Acme BPO")
    review_queue_push(queue=queue, item_ids=[i.pk for i in items])
    log = Path(label_studio["log"])
    before = log.read_text().count("Invalid page")
    assert len(list(ls.tasks_with_annotations(queue.ls_project_id))) == tasks
    assert review_queue_sync(queue=queue).tasks == tasks  # a first sync reads every task
    assert log.read_text().count("Invalid page") == before
    assert len(list(ls.tasks_data(queue.ls_project_id))) == tasks
    assert log.read_text().count("Invalid page") == before
