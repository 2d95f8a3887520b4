"""Golden-set fixtures: items of the harassment policy with human labels in known patterns."""

from __future__ import annotations

import pytest
from django.utils import timezone

from content.models import ContentItem
from review.models import HumanLabel, Labeler, Vendor

TAXONOMY = ["not_harassment", "insult", "hate_harassment", "sexual_harassment", "threat"]


def label_items(policy_version, patterns, *, source="s", vendor="acme", adjudications=None, start=0):
    """``patterns`` is a list of label lists (one per item, labelers ann0..annN in order)."""
    vendor_row, _ = Vendor.objects.get_or_create(name=vendor)
    experts, _ = Vendor.objects.get_or_create(name="experts", defaults={"is_expert": True})
    adjudicator, _ = Labeler.objects.get_or_create(vendor=experts, external_id="judge")
    labelers = [Labeler.objects.get_or_create(vendor=vendor_row, external_id=f"ann{i}")[0] for i in range(6)]
    items = ContentItem.objects.bulk_create([
        ContentItem(source=source, external_id=f"item-{start + n:04d}", parts={"text": f"text {start + n}"},
                    metadata={"surface": "chat"}, content_sha256=f"{start + n:064x}")
        for n in range(len(patterns))])
    now = timezone.now()
    rows = []
    for item, labels in zip(items, patterns, strict=True):
        rows += [HumanLabel(item=item, policy_version=policy_version, labeler=labelers[i], source="import",
                            label=label, labeled_at=now) for i, label in enumerate(labels)]
    for index, label in (adjudications or {}).items():
        rows.append(HumanLabel(item=items[index], policy_version=policy_version, labeler=adjudicator,
                               role="adjudication", source="import", label=label, labeled_at=now))
    HumanLabel.objects.bulk_create(rows)
    return items


@pytest.fixture
def labelled(published):
    """40 items: 20 unanimous, 10 majority, 5 split three ways (one adjudicated), 5 with 2 labels."""
    patterns = ([["insult"] * 3] * 10 + [["not_harassment"] * 3] * 10
                + [["insult", "insult", "not_harassment"]] * 5 + [["threat", "threat", "insult"]] * 5
                + [["insult", "threat", "not_harassment"]] * 5 + [["insult", "insult"]] * 5)
    return label_items(published, patterns, adjudications={30: "threat"})
