"""Two signals on the same items, paired (pure).

Conventions
-----------
- Both signals score the same items, in the same order, against one ``y_true`` (take the
  items both scored before calling). Differences are B − A ("new minus old").
- McNemar's exact test on correctness: b = items A gets right and B wrong, c = the reverse;
  under H0 the discordant split is Binomial(b + c, ½), two-sided p = min(1, 2·P(X ≤ min(b, c)))
  (statsmodels' ``mcnemar(exact=True)``); p = 1 with no discordant item.
- Paired bootstrap: each resample draws one set of item positions and both signals are
  measured on it, so the interval of a difference keeps the items' correlation. Seeded,
  deterministic, undefined-resample handling as in :mod:`stats.evaluation_ci`.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
from scipy.special import bdtr

from .evaluation import as_scores, as_truth, rank_scores
from .evaluation_ci import percentile_interval, resample_indices, score_kernels, strata_groups

PAIRED_METRICS = ("precision", "recall", "f1", "recall_at_fpr")


def mcnemar_exact(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> dict:
    """``{"a_only", "b_only", "discordant", "p_value"}``: a_only counts items only A gets
    right (A right, B wrong), b_only the reverse."""
    a = as_truth(correct_a)
    b = as_truth(correct_b)
    if a.size != b.size:
        raise ValueError(f"the two signals cover {a.size} and {b.size} items")
    a_only = int(np.count_nonzero(a & ~b))
    b_only = int(np.count_nonzero(~a & b))
    discordant = a_only + b_only
    p_value = 1.0 if discordant == 0 else min(1.0, 2.0 * float(bdtr(min(a_only, b_only), discordant, 0.5)))
    return {"a_only": a_only, "b_only": b_only, "discordant": discordant, "p_value": p_value}


def flips(y_true: Sequence, predicted_a: Sequence, predicted_b: Sequence) -> dict[str, np.ndarray]:
    """Item positions whose correctness changed from A to B: ``{"right_to_wrong",
    "wrong_to_right"}``. Works for labels or booleans alike (equality with ``y_true``)."""
    truth = np.asarray(y_true, dtype=object)
    right_a = truth == np.asarray(predicted_a, dtype=object)
    right_b = truth == np.asarray(predicted_b, dtype=object)
    return {"right_to_wrong": np.flatnonzero(right_a & ~right_b), "wrong_to_right": np.flatnonzero(~right_a & right_b)}


def paired_bootstrap(
    y_true: Sequence,
    scores_a: Sequence[float],
    scores_b: Sequence[float],
    *,
    threshold_a: float,
    threshold_b: float,
    max_fpr: float | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    strata: Sequence[Hashable] | None = None,
) -> dict[str, dict]:
    """Δprecision, Δrecall, ΔF1 (each signal at its own threshold, ``score >= threshold``)
    and Δrecall@FPR (when ``max_fpr`` is given), B − A, with percentile intervals from one
    paired bootstrap over items (``strata``: stratified, e.g. by slice):
    ``{metric: {"a", "b", "delta", "ci_low", "ci_high", "ci_reason"}}``. A value undefined on
    the data (0/0) is None; so is its interval, with the reason."""
    truth = as_truth(y_true)
    ranked_a = rank_scores(truth, as_scores(scores_a, truth.size))
    ranked_b = rank_scores(truth, as_scores(scores_b, truth.size))
    compute_a = score_kernels(ranked_a, threshold=threshold_a, max_fpr=max_fpr, target_precision=None, areas=False)
    compute_b = score_kernels(ranked_b, threshold=threshold_b, max_fpr=max_fpr, target_precision=None, areas=False)
    names = [name for name in PAIRED_METRICS if name != "recall_at_fpr" or max_fpr is not None]
    point_a, point_b = compute_a(None), compute_b(None)
    deltas: dict[str, list[np.ndarray]] = {name: [] for name in names}
    groups = None if strata is None else strata_groups(strata, truth.size)
    for drawn in resample_indices(truth.size, n_resamples=n_resamples, seed=seed, groups=groups):
        values_a, values_b = compute_a(drawn), compute_b(drawn)
        for name in names:
            deltas[name].append(values_b[name] - values_a[name])
    result = {}
    for name in names:
        a, b = float(point_a[name][0]), float(point_b[name][0])
        defined = np.isfinite(a) and np.isfinite(b)
        low, high, reason = percentile_interval(np.concatenate(deltas[name]), confidence)
        if not defined:
            low = high = None
            reason = "undefined on the data"
        result[name] = {
            "a": a if np.isfinite(a) else None,
            "b": b if np.isfinite(b) else None,
            "delta": b - a if defined else None,
            "ci_low": low,
            "ci_high": high,
            "ci_reason": reason,
        }
    return result


__all__ = ["PAIRED_METRICS", "flips", "mcnemar_exact", "paired_bootstrap"]
