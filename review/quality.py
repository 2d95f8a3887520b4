"""Labeler quality from review labels (pure: no Django).

Per rater (a labeler, or a vendor): accuracy and Cohen's κ against hidden gold, agreement with
peers (the share of pairs with another labeler on the same item of the same queue that agree),
throughput (labels per active day) and the median seconds spent per label.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from statistics import median

from stats.summary import accuracy_against_gold


@dataclass(frozen=True)
class ReviewLabel:
    rater: Hashable  # what the measures are grouped by: the labeler, or their vendor
    labeler: Hashable  # the person: peers are other people
    queue: int
    item: Hashable  # the unit gold is keyed by
    label: str
    seconds: float | None
    day: date


@dataclass(frozen=True)
class QualityBar:
    min_accuracy: float
    min_gold_items: int

    def verdict(self, gold_items: int, accuracy: float | None) -> str:
        """Why a rater is below the bar, or "" when they are not (or not yet measurable)."""
        if accuracy is None or gold_items < self.min_gold_items or accuracy >= self.min_accuracy:
            return ""
        return (f"accuracy {accuracy:.2f} on {gold_items} hidden gold items is below "
                f"{self.min_accuracy:.2f}")


def rater_quality(labels: Iterable[ReviewLabel], gold: Mapping[Hashable, str],
                  categories: Sequence[str] | None = None) -> dict[Hashable, dict]:
    """``{rater: {labels, gold_items, gold_correct, accuracy, kappa, peer_pairs, peer_agreement,
    labels_per_day, median_seconds}}``; a value that cannot be computed is None."""
    by_rater: dict[Hashable, list[ReviewLabel]] = defaultdict(list)
    by_unit: dict[tuple[int, Hashable], list[ReviewLabel]] = defaultdict(list)
    for label in labels:
        by_rater[label.rater].append(label)
        by_unit[(label.queue, label.item)].append(label)
    against_gold = accuracy_against_gold(
        ((label.rater, label.item, label.label) for given in by_rater.values() for label in given), gold, categories)
    pairs: dict[Hashable, list[int]] = defaultdict(lambda: [0, 0])  # agreeing, all
    for given in by_unit.values():
        for first in given:
            for second in given:
                if first.labeler != second.labeler:
                    pairs[first.rater][1] += 1
                    pairs[first.rater][0] += first.label == second.label
    result = {}
    for rater, given in by_rater.items():
        scored = against_gold.get(rater)
        agreeing, total = pairs.get(rater, (0, 0))
        seconds = [label.seconds for label in given if label.seconds is not None]
        result[rater] = {
            "labels": len(given),
            "gold_items": scored["items"] if scored else 0,
            "gold_correct": scored["correct"] if scored else 0,
            "accuracy": scored["accuracy"] if scored else None,
            "kappa": scored["kappa"].value if scored else None,
            "peer_pairs": total,
            "peer_agreement": agreeing / total if total else None,
            "labels_per_day": len(given) / len({label.day for label in given}),
            "median_seconds": median(seconds) if seconds else None,
        }
    return result
