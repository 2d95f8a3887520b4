"""A review history over several ISO weeks with one labeler who drifts in the current week: the
labelers-over-time tests, the API, the CLI and the browser tests build on it."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import NamedTuple

from django.utils import timezone

from content.models import ContentItem
from policies.models import PolicyVersion
from review.models import HiddenGoldItem, HumanLabel, Labeler, ReviewQueue, Vendor
from review.quality_series import week_start

LABELS = ["insult", "threat", "not_harassment"]
GOLD_PER_WEEK, PLAIN_PER_WEEK = 24, 6


class QualityWorld(NamedTuple):
    vendor: Vendor
    queue: ReviewQueue
    ann: Labeler
    bob: Labeler
    cy: Labeler
    weeks: int


def quality_world(published: PolicyVersion, *, weeks: int = 8) -> QualityWorld:
    """Acme BPO's queue (k = 2) with three labelers over ``weeks`` weeks up to this one. Each week
    has 24 hidden gold items and 6 others, each labelled by two of the three labelers in turn
    (16 gold answers each). gold items 7, 15 and 23 of each week get a wrong label (about 7 in 8 right); in the current
    week bob is right only on items i with i % 8 < 3 (6 of his 16): a drift."""
    vendor = Vendor.objects.create(name="Acme BPO")
    queue = ReviewQueue.objects.create(name="acme", policy_version=published, vendor=vendor, overlap=2,
                                       ls_project_id=1, gold_share=0.8)
    people = [Labeler.objects.create(vendor=vendor, external_id=name, ls_user_id=100 + i)
              for i, name in enumerate(("ann", "bob", "cy"))]
    this_week = week_start(timezone.now().date())
    per_week = GOLD_PER_WEEK + PLAIN_PER_WEEK
    items = ContentItem.objects.bulk_create(
        ContentItem(source="quality", external_id=f"q{n}", parts={"text": f"item {n}"}, content_sha256=f"{n + 7:064x}")
        for n in range(weeks * per_week))
    gold, labels = [], []
    for w in range(weeks):
        monday = this_week - timedelta(weeks=weeks - 1 - w)
        at = datetime.combine(monday, time(0, 30), tzinfo=UTC)
        for i in range(per_week):
            item = items[w * per_week + i]
            truth = LABELS[i % 3]
            is_gold = i < GOLD_PER_WEEK
            if is_gold:
                gold.append(HiddenGoldItem(policy_version=published, item=item, label=truth, origin="admin"))
            pair = [people[i % 3], people[(i + 1) % 3]]
            for k, labeler in enumerate(pair):
                drifting = labeler.external_id == "bob" and w == weeks - 1
                right = i % 8 < (3 if drifting else 7) if is_gold else True
                given = truth if right else LABELS[(i + 1 + k) % 3]  # two wrong labels differ
                labels.append(HumanLabel(item=item, policy_version=published, labeler=labeler, source="label_studio",
                                         queue=queue, label=given, seconds_spent=20.0,
                                         labeled_at=at + timedelta(minutes=i * 2 + k)))
    HiddenGoldItem.objects.bulk_create(gold)
    HumanLabel.objects.bulk_create(labels)
    return QualityWorld(vendor, queue, *people, weeks)
