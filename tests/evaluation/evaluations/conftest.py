"""A frozen golden-set version built row by row (no freeze pipeline), and scores for it."""

from __future__ import annotations

import numpy as np
import pytest

from content.models import ContentItem
from goldsets.models import GoldenItem, GoldenSet, GoldenSetVersion, GoldenSetVersionStatus

TAXONOMY = ["not_harassment", "insult", "hate_harassment", "sexual_harassment", "threat"]
VIOLATING = set(TAXONOMY[1:])


def frozen_goldset(policy_version, rows, *, name="gs", source="g"):
    """rows: (external_id, gold_label, metadata, labels, llm). Items of ``source`` that do not
    exist yet are made. Returns the frozen version."""
    golden_set = GoldenSet.objects.create(name=name, policy=policy_version.policy)
    version = GoldenSetVersion.objects.create(golden_set=golden_set, policy_version=policy_version)
    existing = set(ContentItem.objects.filter(source=source).values_list("external_id", flat=True))
    ContentItem.objects.bulk_create(
        ContentItem(source=source, external_id=ext, parts={"text": ext}, target_part="text",
                    content_sha256=f"{abs(hash((name, ext))):064x}"[:64], metadata=meta)
        for ext, _, meta, _, _ in rows if ext not in existing)
    ids = dict(ContentItem.objects.filter(source=source).values_list("external_id", "pk"))
    GoldenItem.objects.bulk_create(
        GoldenItem(version=version, position=i, item_id=ids[ext], source=source, external_id=ext,
                   content_sha256="0" * 64, parts={"text": ext}, metadata=meta, gold_label=gold,
                   decided_by="majority", labels=labels, llm=llm, lineage={}, export_head="{")
        for i, (ext, gold, meta, labels, llm) in enumerate(rows))
    version.status, version.number, version.digest = GoldenSetVersionStatus.FROZEN, 1, "d" * 64
    version.item_count = len(rows)
    version.save()
    return version


def random_gold(n: int, seed: int = 1):
    """n gold items: labels (half not_harassment), a country, a score correlated with violating."""
    rng = np.random.default_rng(seed)
    gold = rng.choice(TAXONOMY, size=n, p=[0.5, 0.2, 0.1, 0.1, 0.1])
    countries = rng.choice(["de", "fr", "us"], size=n)
    truth = np.isin(gold, list(VIOLATING))
    scores = np.clip(np.round(0.3 * truth + rng.uniform(0, 0.7, size=n), 3), 0, 1)
    return list(gold), list(countries), scores


@pytest.fixture
def goldset_rows():
    gold, countries, _ = random_gold(200)
    rows = []
    for i, (g, c) in enumerate(zip(gold, countries, strict=True)):
        labels = [{"vendor": "v", "role": "labeler", "label": g, "labeler": "x", "labeler_id": 1,
                   **({"rule_ids": ["HAR-1"]} if g == "insult" else {})}]
        rows.append((f"e{i:03d}", g, {"country": c} if i % 10 else {}, labels,
                     {"run": "r", "label": g, "confidence": 0.8, "outcome": "auto", "votes": {}}))
    return rows


@pytest.fixture
def goldset(published, goldset_rows):
    return frozen_goldset(published, goldset_rows)
