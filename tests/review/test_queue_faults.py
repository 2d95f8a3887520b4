"""Faults against a real Label Studio: the server stopped in the middle of a push (and a batch
whose import went through but whose answer was lost), and a webhook endpoint that is down
while labels are made."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from conftest import LABEL_STUDIO_ACCOUNT
from content.models import ContentItem
from demo import devstack
from review.labelstudio import LabelStudioClient, LabelStudioUnavailable
from review.lsconfig import annotation_result
from review.models import HumanLabel, ReviewQueue, ReviewTask
from review.services.queues import review_queue_create, review_queue_push, review_queue_sync

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def own_label_studio(label_studio, tmp_path, settings):
    """A Label Studio of this test's own, so it can be stopped and started again."""
    port = devstack.free_port()
    data_dir = tmp_path / "data"
    process = devstack.start_label_studio_copy(template_dir=Path(label_studio["template"]), data_dir=data_dir,
                                               port=port, account=LABEL_STUDIO_ACCOUNT,
                                               log_path=tmp_path / "ls.log")
    handle = {"process": process, "port": port, "data_dir": data_dir, "log": tmp_path / "ls2.log"}
    settings.LABEL_STUDIO_URL, settings.LABEL_STUDIO_API_TOKEN = f"http://127.0.0.1:{port}", LABEL_STUDIO_ACCOUNT.token
    yield handle
    handle["process"].stop()


def test_label_studio_stopped_during_a_push_gives_every_item_exactly_one_task(own_label_studio, published):
    items = ContentItem.objects.bulk_create([
        ContentItem(source="fault", external_id=str(i), parts={"text": f"message {i}"}, content_sha256=f"{i:064x}")
        for i in range(1400)])
    queue = review_queue_create(name="fault-push", policy_version=published, vendor_name="Acme BPO", overlap=1)
    client = LabelStudioClient(f"http://127.0.0.1:{own_label_studio['port']}", LABEL_STUDIO_ACCOUNT.token)
    real_import = client.tasks_import
    calls = {"n": 0}
    restarted = threading.Event()

    def restart_later() -> None:
        own_label_studio["process"] = devstack.start_label_studio(
            port=own_label_studio["port"], data_dir=own_label_studio["data_dir"], account=LABEL_STUDIO_ACCOUNT,
            log_path=own_label_studio["log"])
        restarted.set()

    def import_then_crash(project_id, tasks):
        calls["n"] += 1
        ids = real_import(project_id, tasks)
        if calls["n"] == 2:
            # The second batch reached Label Studio, then the server went away before we
            # saved its ids: the worst moment.
            own_label_studio["process"].stop()
            threading.Thread(target=restart_later, daemon=True).start()
            raise LabelStudioUnavailable("connection reset while importing (test)")
        return ids

    client.tasks_import = import_then_crash
    seen_states: list[str] = []

    def watch_and_sleep(seconds: float) -> None:
        seen_states.append(ReviewQueue.objects.get(pk=queue.pk).status_detail)
        restarted.wait(timeout=seconds)

    result = review_queue_push(queue=queue, item_ids=[i.pk for i in items], client=client, retry_for=180,
                               sleep=watch_and_sleep)

    assert restarted.is_set() and result.retries >= 1
    assert seen_states and all("push waiting" in s and "attempt" in s for s in seen_states)
    assert result.recovered == 500  # the batch whose answer was lost, found by our task id
    assert result.recovered + result.pushed == 1400
    assert ReviewQueue.objects.get(pk=queue.pk).status_detail == ""
    in_label_studio = [t.data["touchstone_task"] for t in client.tasks_with_annotations(queue.ls_project_id)]
    ours = set(ReviewTask.objects.filter(queue=queue).values_list("pk", flat=True))
    assert len(in_label_studio) == 1400 and set(in_label_studio) == ours  # none missing, none twice
    assert not ReviewTask.objects.filter(queue=queue).exclude(status="open").exists()


def test_a_push_gives_up_after_its_retry_window_and_says_why(own_label_studio, published, settings):
    item = ContentItem.objects.create(source="fault", external_id="x", parts={"text": "x"}, content_sha256="0" * 64)
    queue = review_queue_create(name="fault-down", policy_version=published, vendor_name="Acme BPO")
    own_label_studio["process"].stop()
    with pytest.raises(LabelStudioUnavailable, match="unreachable"):
        review_queue_push(queue=queue, item_ids=[item.pk], retry_for=3, sleep=lambda s: None)
    queue.refresh_from_db()
    assert queue.status_detail.startswith("push stopped after") and "unreachable" in queue.status_detail
    # Whether the batch reached Label Studio is unknown: the next push looks it up first.
    assert ReviewTask.objects.get(queue=queue).status == "importing"
    own_label_studio["process"] = devstack.start_label_studio(
        port=own_label_studio["port"], data_dir=own_label_studio["data_dir"], account=LABEL_STUDIO_ACCOUNT,
        log_path=own_label_studio["log"])
    again = review_queue_push(queue=queue, item_ids=[item.pk])
    assert (again.recovered, again.pushed) == (0, 1)
    client = LabelStudioClient(settings.LABEL_STUDIO_URL, LABEL_STUDIO_ACCOUNT.token)
    assert len(list(client.tasks_with_annotations(queue.ls_project_id))) == 1


@pytest.mark.django_db(transaction=True)
def test_labels_made_while_the_webhook_endpoint_is_down_are_recovered_by_reconcile(label_studio, published,
                                                                                   settings):
    settings.LABEL_STUDIO_URL, settings.LABEL_STUDIO_API_TOKEN = label_studio["url"], label_studio["token"]
    settings.LABEL_STUDIO_WEBHOOK_URL = f"http://127.0.0.1:{devstack.free_port()}/hooks/label-studio/"  # nobody
    settings.LABEL_STUDIO_WEBHOOK_SECRET = "hook-secret"
    items = ContentItem.objects.bulk_create([
        ContentItem(source="hookdown", external_id=str(i), parts={"text": f"m {i}"}, content_sha256=f"{i:064x}")
        for i in range(6)])
    queue = review_queue_create(name="hook-down", policy_version=published, vendor_name="Acme BPO", overlap=2)
    review_queue_push(queue=queue, item_ids=[i.pk for i in items])
    client = LabelStudioClient(label_studio["url"], label_studio["token"])
    users = [client.user_create(email=f"down{n}@acme.test", name=f"Down {n}") for n in range(2)]
    for task in ReviewTask.objects.filter(queue=queue):
        for user in users:
            client.annotation_create(task.ls_task_id, annotation_result("insult"), completed_by=user)
    assert not HumanLabel.objects.filter(queue=queue).exists()  # no webhook arrived
    result = review_queue_sync(queue=queue)
    assert (result.created, result.completed) == (12, 6)
    assert HumanLabel.objects.filter(queue=queue, is_valid=True).count() == 12
