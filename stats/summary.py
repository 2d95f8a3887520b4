"""Everything a golden-set version reports, computed in one pass (pure)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence

from .agreement import (
    Estimate,
    Units,
    as_count_table,
    cohen_kappa,
    fleiss_kappa,
    gwet_ac1,
    krippendorff_alpha,
    per_label_alpha,
    percent_agreement,
)
from .resampling import bootstrap_ci, with_ci

MIN_SHARED_FOR_PAIRWISE = 20


def pairwise_cohen_kappa(
    units: Units, categories: Sequence[Hashable] | None = None, min_shared: int = MIN_SHARED_FOR_PAIRWISE
) -> list[dict]:
    """Cohen's κ for every labeler pair with at least ``min_shared`` units rated by both.

    Returns ``[{"a", "b", "shared", "kappa": Estimate}]`` sorted by (a, b).
    """
    shared: dict[tuple[Hashable, Hashable], tuple[list, list]] = defaultdict(lambda: ([], []))
    for unit in units:
        labelers = sorted(unit, key=str)
        for i, a in enumerate(labelers):
            for b in labelers[i + 1:]:
                first, second = shared[(a, b)]
                first.append(unit[a])
                second.append(unit[b])
    rows = []
    for (a, b), (first, second) in sorted(shared.items(), key=lambda pair: (str(pair[0][0]), str(pair[0][1]))):
        if len(first) >= min_shared:
            rows.append({"a": a, "b": b, "shared": len(first), "kappa": cohen_kappa(first, second, categories)})
    return rows


def accuracy_against_gold(
    ratings: Iterable[tuple[Hashable, Hashable, Hashable]],
    gold: Mapping[Hashable, Hashable],
    categories: Sequence[Hashable] | None = None,
) -> dict[Hashable, dict]:
    """Per rater (a labeler, a vendor, an LLM voter): accuracy and Cohen's κ against gold.

    ``ratings`` are ``(rater, unit, label)`` triples; units without a gold label are skipped.
    Returns ``{rater: {"items", "correct", "accuracy", "kappa": Estimate}}``.
    """
    given: dict[Hashable, tuple[list, list]] = defaultdict(lambda: ([], []))
    for rater, unit, label in ratings:
        if unit in gold:
            labels, truth = given[rater]
            labels.append(label)
            truth.append(gold[unit])
    result = {}
    for rater, (labels, truth) in given.items():
        correct = sum(1 for label, expected in zip(labels, truth, strict=True) if label == expected)
        result[rater] = {
            "items": len(labels),
            "correct": correct,
            "accuracy": correct / len(labels),
            "kappa": cohen_kappa(labels, truth, categories),
        }
    return result


def agreement_summary(
    units: Units,
    categories: Sequence[Hashable] | None = None,
    *,
    ordered: bool = False,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict:
    """Percent agreement, Fleiss' κ, Gwet's AC1 and Krippendorff's α (nominal, and ordinal
    when ``ordered``: ``categories`` in order) with bootstrap CIs for α, AC1 and Fleiss' κ, plus per-label
    one-vs-rest α and pairwise Cohen's κ. JSON-ready: every estimate is a dict."""
    table = as_count_table(units, categories)
    categories = table.categories

    def interval(statistic: str, level: str = "nominal") -> tuple:
        return bootstrap_ci(table, statistic, level=level, n_resamples=n_resamples, seed=seed)

    ratings_per_unit = Counter(len(unit) for unit in units)
    summary = {
        "units": len(units),
        "pairable_units": table.units,
        "ratings": sum(len(unit) for unit in units),
        "ratings_per_unit": {str(k): v for k, v in sorted(ratings_per_unit.items())},
        "bootstrap": {"resamples": n_resamples, "seed": seed, "confidence": 0.95, "method": "percentile"},
        "percent_agreement": percent_agreement(table).as_dict(),
        "fleiss_kappa": with_ci(fleiss_kappa(table), interval("fleiss_kappa")).as_dict(),
        "gwet_ac1": with_ci(gwet_ac1(table), interval("gwet_ac1")).as_dict(),
        "krippendorff_alpha": with_ci(krippendorff_alpha(table, "nominal"), interval("krippendorff_alpha")).as_dict(),
        "krippendorff_alpha_ordinal": None,
        "per_label_alpha": {str(k): v.as_dict() for k, v in per_label_alpha(table).items()},
        "pairwise_cohen_kappa": [
            {**row, "a": str(row["a"]), "b": str(row["b"]), "kappa": row["kappa"].as_dict()}
            for row in pairwise_cohen_kappa(units, categories)
        ],
    }
    if ordered:
        summary["krippendorff_alpha_ordinal"] = with_ci(
            krippendorff_alpha(table, "ordinal"), interval("krippendorff_alpha", "ordinal")).as_dict()
    return summary


__all__ = ["Estimate", "accuracy_against_gold", "agreement_summary", "pairwise_cohen_kappa"]
