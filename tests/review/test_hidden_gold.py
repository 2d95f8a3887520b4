"""Hidden gold from a frozen golden set (`goldset hidden-gold`), and how much of it a push mixes in."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from content.models import ContentItem
from goldsets.freeze import FreezeRule
from goldsets.services import goldset_version_build, goldset_version_freeze_request
from review.models import HiddenGoldItem, HumanLabel, Labeler, ReviewQueue, Vendor
from review.services.quality import gold_items_to_mix

pytestmark = pytest.mark.django_db


def test_a_frozen_golden_set_becomes_hidden_gold_once(published, cli_user):
    items = ContentItem.objects.bulk_create([ContentItem(source="g", external_id=str(i), parts={"text": str(i)},
                                                         content_sha256=f"{i:064x}") for i in range(5)])
    vendor = Vendor.objects.create(name="Acme BPO")
    labelers = [Labeler.objects.create(vendor=vendor, external_id=f"a{n}") for n in range(3)]
    given = {0: ["insult"] * 3, 1: ["threat", "threat", "insult"], 2: ["insult", "threat", "not_harassment"],
             3: ["not_harassment"] * 3, 4: ["insult"] * 2}
    for index, labels in given.items():
        for labeler, label in zip(labelers, labels, strict=False):
            HumanLabel.objects.create(item=items[index], policy_version=published, labeler=labeler, label=label,
                                      source="import", labeled_at=timezone.now())
    goldset_version_build(version_id=goldset_version_freeze_request(
        name="harassment-gold", policy_version=published, rule=FreezeRule(min_labels=3)).pk)

    out = StringIO()
    call_command("goldset", "hidden-gold", "harassment-gold", stdout=out)
    assert "3 items of harassment-gold are now hidden gold" in out.getvalue()  # no majority, too few labels: out
    gold = dict(HiddenGoldItem.objects.values_list("item__external_id", "label"))
    assert gold == {"0": "insult", "1": "threat", "3": "not_harassment"}
    assert HiddenGoldItem.objects.filter(origin="golden_set", origin_detail="harassment-gold v1").count() == 3
    call_command("goldset", "hidden-gold", "harassment-gold", stdout=out)
    assert HiddenGoldItem.objects.count() == 3
    with pytest.raises(CommandError, match="nope"):
        call_command("goldset", "hidden-gold", "nope", stdout=StringIO())


@pytest.mark.parametrize(("share", "real", "gold", "available", "expected"), [
    (0.0, 90, 0, 50, 0),
    (0.1, 90, 0, 50, 10),  # 10 of 100 tasks
    (0.1, 90, 4, 50, 6),  # tops up to the share
    (0.1, 90, 12, 50, 0),  # never removes
    (0.5, 90, 0, 20, 20),  # as many as there are
])
def test_gold_is_mixed_in_at_the_queue_share(published, share, real, gold, available, expected):
    items = ContentItem.objects.bulk_create([ContentItem(source="m", external_id=str(i), parts={"text": str(i)},
                                                         content_sha256=f"{i:064x}") for i in range(available)])
    HiddenGoldItem.objects.bulk_create([HiddenGoldItem(policy_version=published, item=item, label="insult",
                                                       origin="admin") for item in items])
    queue = ReviewQueue.objects.create(name="q", policy_version=published, vendor=Vendor.objects.create(name="V"),
                                       gold_share=share)
    picked = gold_items_to_mix(queue, real_tasks=real, gold_tasks=gold, taken=set())
    assert len(picked) == expected and len(set(picked)) == expected
    assert picked == gold_items_to_mix(queue, real_tasks=real, gold_tasks=gold, taken=set())  # reproducible
