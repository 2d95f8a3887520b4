"""Labeling ops reads the queues page in a browser: counts per queue and per labeler."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.utils import timezone

from content.models import ContentItem
from review.models import HiddenGoldItem, HumanLabel, Labeler, ReviewQueue, ReviewTask, Vendor
from tests.browser.conftest import admin_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_queues_page_shows_progress_and_labelers(page, published, django_user_model, artifacts_dir: Path):
    vendor = Vendor.objects.create(name="Acme BPO")
    experts = ReviewQueue.objects.create(name="experts", policy_version=published, purpose="adjudication",
                                         vendor=Vendor.objects.create(name="Experts", is_expert=True), overlap=1,
                                         ls_project_id=2)
    queue = ReviewQueue.objects.create(name="acme", policy_version=published, vendor=vendor, overlap=2,
                                       ls_project_id=1, adjudication_queue=experts)
    items = ContentItem.objects.bulk_create([ContentItem(source="s", external_id=str(i), parts={"text": str(i)},
                                                         content_sha256=f"{i:064x}") for i in range(5)])
    statuses = ["complete", "complete", "open", "open", "new"]
    for n, (item, status) in enumerate(zip(items, statuses, strict=True)):
        ReviewTask.objects.create(queue=queue, item=item, status=status, ls_task_id=n + 1 if status != "new" else None,
                                  labels={"complete": 2, "open": n - 2}.get(status, 0))
    ReviewTask.objects.create(queue=experts, item=items[0], status="open", ls_task_id=100)
    ann = [Labeler.objects.create(vendor=vendor, external_id=f"ann{i}", ls_user_id=10 + i) for i in range(2)]
    for i, item in enumerate(items[:3]):
        for labeler in ann[: 2 if i < 2 else 1]:
            HumanLabel.objects.create(item=item, policy_version=published, labeler=labeler, source="label_studio",
                                      queue=queue, label="insult", seconds_spent=20 + i, labeled_at=timezone.now())
    HiddenGoldItem.objects.create(policy_version=published, item=items[0], label="insult", origin="admin")
    HiddenGoldItem.objects.create(policy_version=published, item=items[1], label="threat", origin="admin")
    Labeler.objects.filter(pk=ann[1].pk).update(flagged_at=timezone.now(),
                                                 flag_reason="accuracy 0.50 on 2 hidden gold items is below 0.70")
    django_user_model.objects.create_superuser("boss", password="pw-boss")
    admin_login(page, "boss", "pw-boss")

    page.goto("/queues/")
    acme = page.locator("#queue-acme")
    cards = dict(zip(acme.locator(".card .muted").all_inner_texts(), acme.locator(".card .v").all_inner_texts(),
                     strict=False))
    assert cards["Not yet pushed"] == "1" and cards["Pending"] == "1" and cards["In progress"] == "1"
    assert cards["Done"] == "2"
    assert acme.locator("tbody tr").count() == 2 and "ann0" in acme.inner_text()
    header = [h.lower() for h in acme.locator("table.labelers thead th").all_inner_texts()]
    first = dict(zip(header, acme.locator("table.labelers tbody tr").first.locator("td").all_inner_texts(),
                     strict=True))
    assert first["labels"] == "3" and first["gold items"] == "2" and first["accuracy"] == "0.50"
    assert first["peer agreement"] == "1.00" and first["median seconds"] == "21.0"
    assert "flagged: accuracy 0.50" in acme.locator("tr.flagged").inner_text()
    vendors = page.locator("#vendors tbody tr").all_inner_texts()
    assert any(row.startswith("Acme BPO") and "0.50" in row for row in vendors)
    experts_cards = page.locator("#queue-experts .card .v").all_inner_texts()
    assert "1" in experts_cards and "Waiting for adjudication" in page.inner_text("#queue-experts")
    shots = artifacts_dir / "browser"
    shots.mkdir(exist_ok=True)
    page.screenshot(path=str(shots / "20-queues.png"), full_page=True)
