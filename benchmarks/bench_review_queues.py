"""Review queues against a real Label Studio (Community Edition, its own virtualenv).

- push: 10,000 routed items into a queue with ``review_queue_push`` (idempotent: claims,
  ``importing`` marks, ids saved per batch), against a raw SDK import of the same task payloads
  in batches of the same size into a second project, in the same run. Alternating, best of two
  each. Target ratio (raw seconds / push seconds) >= 0.8.
- reconcile: 10,000 annotations pulled by ``review_queue_sync`` into HumanLabel rows (k = 1,
  each task completes), reported in items/s; the ratio is against a raw SDK listing of the same
  tasks with their annotations (no target in the issue; the line says so with target=report).
Prints one BENCH line per measure; the last is the push ratio.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ITEMS = int(os.environ.get("BENCH_REVIEW_ITEMS", "10000"))
ACCOUNT = ("admin@touchstone.bench", "touchstone-bench-pw", "touchstone-bench-token-0001")


def setup(state: Path, url: str, token: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.update(TOUCHSTONE_STATE_DIR=str(state), DATABASE_URL=f"sqlite:///{state / 'bench.sqlite3'}",
                      DJANGO_SETTINGS_MODULE="touchstone.settings", LABEL_STUDIO_URL=url,
                      LABEL_STUDIO_API_TOKEN=token, LOG_LEVEL="WARNING")
    import django

    django.setup()
    from benchdb import migrate_and_publish_harassment

    migrate_and_publish_harassment()


def items(prefix: str) -> list[int]:
    from content.models import ContentItem

    rows = [ContentItem(source=prefix, external_id=str(i), content_sha256=f"{prefix}-{i}".ljust(64, "0")[:64],
                        parts={"text": f"{prefix} message {i}: you are all wrong about this, again and again"})
            for i in range(ITEMS)]
    ContentItem.objects.bulk_create(rows, batch_size=2000)
    return list(ContentItem.objects.filter(source=prefix).values_list("pk", flat=True))


def timed_push(name: str) -> float:
    from policies.models import PolicyVersion
    from review.services.queues import review_queue_create, review_queue_push

    queue = review_queue_create(name=name, policy_version=PolicyVersion.objects.get(), vendor_name="Bench BPO",
                                overlap=1, image_slots=0)
    ids = items(name)
    started = time.perf_counter()
    result = review_queue_push(queue=queue, item_ids=ids)
    elapsed = time.perf_counter() - started
    assert result.pushed == ITEMS, result
    return elapsed


def timed_raw_import(name: str) -> float:
    """The same payload a queue sends, straight through the SDK, nothing recorded."""
    from content.models import ContentItem
    from policies.models import PolicyVersion
    from review.lsconfig import label_config, task_data
    from review.services.queues import PUSH_BATCH, label_studio_client, queue_config_spec

    client = label_studio_client()
    spec = queue_config_spec(PolicyVersion.objects.get())
    project = client.project_create(title=name, label_config=label_config(spec), instructions="bench",
                                    maximum_annotations=1)
    ids = items(name)
    started = time.perf_counter()
    for start in range(0, len(ids), PUSH_BATCH):
        chunk = ContentItem.objects.filter(pk__in=ids[start:start + PUSH_BATCH]).order_by("pk")
        payload = [{"data": {**task_data(item.parts, spec), "touchstone_task": item.pk}} for item in chunk]
        client.sdk.projects.import_tasks(project, request=payload, return_task_ids=True)
    return time.perf_counter() - started


def reconcile() -> tuple[float, float]:
    """Tasks imported with one annotation each (as if labeled), mapped to the queue, then synced."""
    from policies.models import PolicyVersion
    from review.lsconfig import annotation_result, task_data
    from review.models import HumanLabel, ReviewTask
    from review.services.queues import (
        label_studio_client,
        queue_config_spec,
        review_queue_create,
        review_queue_push,
        review_queue_sync,
    )

    version = PolicyVersion.objects.get()
    queue = review_queue_create(name="reconcile", policy_version=version, vendor_name="Bench BPO", overlap=1,
                                image_slots=0)
    ids = items("reconcile")
    ReviewTask.objects.bulk_create([ReviewTask(queue=queue, item_id=i, status="importing") for i in ids],
                                   batch_size=2000)
    spec, client = queue_config_spec(version), label_studio_client()
    tasks = list(ReviewTask.objects.filter(queue=queue).select_related("item"))
    labels = ["not_harassment", "insult", "threat"]
    for start in range(0, len(tasks), 500):
        client.sdk.projects.import_tasks(queue.ls_project_id, request=[
            {"data": {**task_data(t.item.parts, spec), "touchstone_task": t.pk},
             "annotations": [{"result": annotation_result(labels[t.pk % 3]), "lead_time": 5.0}]}
            for t in tasks[start:start + 500]])
    assert review_queue_push(queue=queue, item_ids=ids).recovered == ITEMS  # ids mapped by our task id
    started = time.perf_counter()
    listed = sum(len(t.annotations) for t in client.tasks_with_annotations(queue.ls_project_id))
    raw = time.perf_counter() - started
    assert listed == ITEMS
    started = time.perf_counter()
    result = review_queue_sync(queue=queue)
    synced = time.perf_counter() - started
    assert result.created == ITEMS and HumanLabel.objects.filter(queue=queue).count() == ITEMS, result
    return synced, raw


def main() -> None:
    from demo import devstack

    account = devstack.LabelStudioAccount(*ACCOUNT)
    state_root = ROOT / ".state" / "bench"
    template = devstack.label_studio_template(template_dir=state_root / "label-studio-template", account=account,
                                              log_path=state_root / "label-studio-init.log")
    with tempfile.TemporaryDirectory(prefix="touchstone-bench-review-") as tmp:
        work = Path(tmp)
        port = devstack.free_port()
        process = devstack.start_label_studio_copy(template_dir=template, data_dir=work / "ls", port=port,
                                                   account=account, log_path=work / "ls.log")
        try:
            setup(work, f"http://127.0.0.1:{port}", account.token)
            pushes, raws = [], []
            for round_ in range(2):
                raws.append(timed_raw_import(f"raw-{round_}"))
                pushes.append(timed_push(f"push-{round_}"))
                print(f"round {round_ + 1}: raw SDK import {raws[-1]:.2f} s, queue push {pushes[-1]:.2f} s")
            synced, listed = reconcile()
        finally:
            process.stop()
    push, raw = min(pushes), min(raws)
    print(f"BENCH review_reconcile_throughput {ITEMS / synced:.0f} items/s ratio={listed / synced:.2f} "
          f"target=report")
    print(f"BENCH review_push_throughput {ITEMS / push:.0f} tasks/s ratio={raw / push:.2f} target=0.8")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
