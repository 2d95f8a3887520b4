"""A worker killed with -9 during a freeze leaves no frozen version and no golden item;
re-running the freeze on a new worker succeeds. Real Redis, real workers."""

from __future__ import annotations

import os
import signal
import time

import pytest
from django.utils import timezone

from content.models import ContentItem
from demo import devstack
from goldsets.exports import goldset_version_verify
from goldsets.freeze import FreezeRule
from goldsets.models import GoldenItem, GoldenSetVersion
from goldsets.services import goldset_freeze_watchdog, goldset_version_freeze_request
from goldsets.tasks import freeze_golden_set_version
from review.models import HumanLabel, Labeler, Vendor

pytestmark = pytest.mark.integration
ITEMS = 30_000  # the freeze writes them in 15 chunks: time to kill it after the first


def seed(published) -> None:
    vendor = Vendor.objects.create(name="acme")
    labelers = Labeler.objects.bulk_create([Labeler(vendor=vendor, external_id=f"ann{i}") for i in range(9)])
    options = ["insult", "not_harassment", "threat"]
    now = timezone.now()
    for start in range(0, ITEMS, 10_000):
        items = ContentItem.objects.bulk_create([
            ContentItem(source="t", external_id=f"{n:06d}", parts={"text": f"message {n} " * 20},
                        content_sha256=f"{n:064x}") for n in range(start, min(start + 10_000, ITEMS))],
            batch_size=2000)
        HumanLabel.objects.bulk_create([
            HumanLabel(item=item, policy_version=published, labeler=labelers[(n + k) % 9], source="import",
                       label=options[(n * (k + 1)) % 3 if n % 5 else 0], labeled_at=now)
            for n, item in enumerate(items, start=start) for k in range(3)], batch_size=5000)


def test_killed_freeze_leaves_nothing_and_a_rerun_succeeds(celery_worker_process, redis_url, published, tmp_path):
    seed(published)
    version = goldset_version_freeze_request(name="crash", policy_version=published, rule=FreezeRule())
    result = freeze_golden_set_version.delay(version.pk)
    deadline = time.monotonic() + 60
    while result.state != "PROGRESS":  # the first chunk is written, inside the freeze's transaction
        assert time.monotonic() < deadline, f"the freeze never reported progress ({result.state})"
        time.sleep(0.02)
    assert result.info["done"] < result.info["total"]
    os.killpg(celery_worker_process.pid, signal.SIGKILL)
    celery_worker_process.popen.wait(timeout=10)

    version.refresh_from_db()
    assert version.status == "building" and version.number is None
    assert not GoldenItem.objects.exists()
    assert not GoldenSetVersion.objects.filter(status="frozen").exists()

    from conftest import child_env

    replacement = devstack.start_celery_worker(
        env=child_env(CELERY_BROKER_URL=redis_url, CELERY_RESULT_BACKEND=redis_url),
        log_path=tmp_path / "worker2.log", queues=["default", "llm", "sync", "freeze"], hostname="second")
    try:
        # The interrupted freeze is neither frozen nor failed; the watchdog leaves a young one
        # alone, and re-running it (what an operator does) freezes it exactly once.
        assert goldset_freeze_watchdog(stale_after_seconds=3600) == []
        freeze_golden_set_version.delay(version.pk).get(timeout=180)
    finally:
        replacement.stop()
    version.refresh_from_db()
    assert version.status == "frozen" and version.number == 1
    assert version.item_count == GoldenItem.objects.filter(version=version).count() > 0
    assert goldset_version_verify(version=version) == version.digest
