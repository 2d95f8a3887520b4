"""Labeler quality measures (pure): accuracy and κ on hidden gold against scikit-learn, peer
agreement counted by hand, throughput, median time, and the bar."""

from __future__ import annotations

from datetime import date

import pytest
from sklearn.metrics import cohen_kappa_score

from review.quality import QualityBar, ReviewLabel, rater_quality

DAY1, DAY2 = date(2026, 11, 1), date(2026, 11, 2)


def _label(rater, item, label, seconds=None, day=DAY1, queue=1, labeler=None):
    return ReviewLabel(rater=rater, labeler=labeler or rater, queue=queue, item=item, label=label,
                       seconds=seconds, day=day)


def test_accuracy_and_kappa_on_gold_match_scikit_learn():
    gold = {1: "a", 2: "b", 3: "a", 4: "c", 5: "b", 6: "a"}
    given = ["a", "b", "b", "c", "a", "a"]
    labels = [_label("ann", item, label) for item, label in zip(gold, given, strict=True)]
    labels.append(_label("ann", 99, "a"))  # not gold: counted as a label, not scored
    (row,) = rater_quality(labels, gold).values()
    assert (row["labels"], row["gold_items"], row["gold_correct"]) == (7, 6, 4)
    assert row["accuracy"] == pytest.approx(4 / 6)
    assert row["kappa"] == pytest.approx(cohen_kappa_score(given, list(gold.values())))


def test_peer_agreement_throughput_and_median_time():
    labels = [
        _label("x", 1, "a", 10, DAY1), _label("y", 1, "a", 30), _label("z", 1, "b", 50),
        _label("x", 2, "b", 20, DAY2), _label("y", 2, "b"),
        _label("x", 3, "a", 40, DAY2, queue=2), _label("y", 3, "b", queue=1),  # other queues: not peers
    ]
    rows = rater_quality(labels, gold={})
    # x's pairs: item 1 with y (agree), with z (disagree); item 2 with y (agree).
    assert rows["x"]["peer_pairs"] == 3 and rows["x"]["peer_agreement"] == pytest.approx(2 / 3)
    assert rows["z"]["peer_agreement"] == 0.0
    assert rows["x"]["labels_per_day"] == 1.5  # 3 labels over 2 active days
    assert rows["x"]["median_seconds"] == 20 and rows["y"]["median_seconds"] == 30
    assert rows["x"]["accuracy"] is None and rows["x"]["gold_items"] == 0


def test_vendor_rows_count_pairs_between_their_own_labelers():
    labels = [_label("acme", 1, "a", labeler="p"), _label("acme", 1, "a", labeler="q"),
              _label("globex", 1, "b", labeler="r")]
    rows = rater_quality(labels, gold={})
    assert rows["acme"]["peer_pairs"] == 4 and rows["acme"]["peer_agreement"] == pytest.approx(2 / 4)


@pytest.mark.parametrize(("items", "accuracy", "flagged"), [
    (9, 0.1, False),  # too few gold items to judge
    (10, 0.69, True),
    (10, 0.70, False),
    (50, None, False),
])
def test_quality_bar(items, accuracy, flagged):
    verdict = QualityBar(min_accuracy=0.7, min_gold_items=10).verdict(items, accuracy)
    assert bool(verdict) is flagged
    if flagged:
        assert "0.69" in verdict and "10 hidden gold items" in verdict
