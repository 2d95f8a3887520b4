"""Percentile bootstrap intervals over items for a signal's metrics (pure).

Conventions
-----------
- Items are resampled with replacement, ``n_resamples`` times (default 1,000), from a numpy
  ``Generator`` seeded with ``seed``: the same inputs and seed give the same intervals.
- A resample is a vector of weights, how many times each item was drawn (integer index
  draws turned into counts with ``bincount``, in chunks of resamples), so metrics are
  computed for a whole chunk at once with the kernels of :mod:`stats.evaluation`.
- ``strata`` (one key per item, e.g. a slice such as the country) makes the bootstrap
  stratified: each stratum is resampled to its own size, so slice sizes stay fixed. The
  slices of :func:`slice_metrics` read their items' weights from the same stratified
  resamples, which pairs every slice's interval with the overall one.
- The interval is the (α/2, 1 − α/2) percentiles of the resampled values. A metric that is
  undefined in a resample (a 0/0) is left out of it; if it is undefined in more than 5 % of
  resamples the interval is ``(None, None)`` with the reason, as in :mod:`stats.resampling`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterator, Sequence

import numpy as np

from .evaluation import (
    RankedScores,
    as_truth,
    cell_counts,
    counts_at,
    cumulative_counts,
    encode,
    kernel_average_precision,
    kernel_binary,
    kernel_recall_at_fpr,
    kernel_roc_auc,
    kernel_threshold_for_precision,
    labels_in_order,
    precision_at_positive,
    rank_scores,
)
from .resampling import MIN_DEFINED_SHARE

Interval = tuple[float | None, float | None, str | None]
CHUNK = 16  # resamples per batch: (16, 100,000) arrays are small enough for the allocator to reuse


def _check(n_resamples: int, confidence: float) -> None:
    if n_resamples < 1:
        raise ValueError("n_resamples: at least 1")
    if not 0 < confidence < 1:
        raise ValueError("confidence: must be between 0 and 1")


def strata_groups(strata: Sequence[Hashable] | None, n: int) -> list[np.ndarray]:
    """Item positions of each stratum (one group of every item when ``strata`` is None)."""
    if strata is None:
        return [np.arange(n)]
    if len(strata) != n:
        raise ValueError(f"strata: {len(strata)} keys for {n} items")
    codes = encode(strata, labels_in_order(strata, [], None))
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    return np.split(order, bounds)


def resample_indices(
    n: int, *, n_resamples: int, seed: int, groups: list[np.ndarray] | None = None, chunk: int = CHUNK
) -> Iterator[np.ndarray]:
    """Chunks of (C, n) item positions drawn with replacement, one row per resample. With
    ``groups`` (the item positions of each stratum) each stratum is drawn to its own size and
    the columns come in group order: group 0's draws first, then group 1's, and so on."""
    rng = np.random.default_rng(seed)
    dtype = np.int32 if n < 2**31 else np.int64
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        if groups is None or len(groups) == 1:
            drawn = rng.integers(0, n, size=(size, n), dtype=dtype)
            yield drawn if groups is None else groups[0][drawn]
            continue
        drawn = np.empty((size, n), dtype=np.int64)
        for row in range(size):
            drawn[row] = np.concatenate([group[rng.integers(0, group.size, size=group.size)] for group in groups])
        yield drawn


def percentile_interval(draws: np.ndarray, confidence: float) -> Interval:
    """Percentile interval of the finite draws; undefined when too many are NaN."""
    defined = draws[np.isfinite(draws)]
    if defined.size < MIN_DEFINED_SHARE * draws.size:
        return None, None, f"undefined in {draws.size - defined.size} of {draws.size} resamples"
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(defined, [tail, 100 - tail])
    return float(low), float(high), None


# --- score metrics ---------------------------------------------------------------------------


def score_kernels(
    ranked: RankedScores, *, threshold: float | None, max_fpr: float | None, target_precision: float | None,
    areas: bool = True,
) -> Callable[[np.ndarray | None], dict[str, np.ndarray]]:
    """A function of drawn item positions (B, n) (None: every item once) → {metric: (B,)
    values}, NaN where undefined. ``areas=False`` leaves out ROC AUC and AUPRC (a paired
    comparison reports neither, and they are most of a resample's cost)."""

    def compute(drawn: np.ndarray | None) -> dict[str, np.ndarray]:
        counts = cumulative_counts(ranked, drawn)
        precision = precision_at_positive(counts) if areas or target_precision is not None else None
        values = ({"roc_auc": kernel_roc_auc(counts), "average_precision": kernel_average_precision(counts, precision)}
                  if areas else {})
        if threshold is not None:
            at_tp, at_fp = counts_at(ranked, counts, threshold)
            values.update(kernel_binary(at_tp, at_fp, counts.positives, counts.negatives))
        if max_fpr is not None:
            values["recall_at_fpr"] = kernel_recall_at_fpr(counts, max_fpr)[0]
        if target_precision is not None:
            k = kernel_threshold_for_precision(counts, target_precision, precision)
            values["threshold_at_precision"] = np.where(k >= 0, ranked.thresholds[np.maximum(k, 0)], np.nan)
        return values

    return compute


def _bootstrap(
    compute: Callable[..., dict[str, np.ndarray]],
    n: int,
    *,
    n_resamples: int,
    confidence: float,
    seed: int,
    groups: list[np.ndarray] | None,
) -> dict[str, Interval]:
    draws: dict[str, list[np.ndarray]] = {}
    for drawn in resample_indices(n, n_resamples=n_resamples, seed=seed, groups=groups):
        for name, values in compute(drawn).items():
            draws.setdefault(name, []).append(values)
    return {name: percentile_interval(np.concatenate(chunks), confidence) for name, chunks in draws.items()}


def _point(values: dict[str, np.ndarray]) -> dict[str, float | None]:
    return {name: (None if math.isnan(array[0]) else float(array[0])) for name, array in values.items()}


def bootstrap_score_metrics(
    y_true: Sequence,
    scores: Sequence[float],
    *,
    threshold: float | None = None,
    max_fpr: float | None = None,
    target_precision: float | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    strata: Sequence[Hashable] | None = None,
) -> dict[str, dict]:
    """Point estimates and percentile bootstrap intervals over items:
    ``{metric: {"value", "ci_low", "ci_high", "ci_reason"}}`` for ``roc_auc`` and
    ``average_precision`` (AUPRC) always, ``precision``/``recall``/``f1``/``fpr`` at
    ``threshold``, ``recall_at_fpr`` at ``max_fpr``, and ``threshold_at_precision`` (the
    threshold reaching ``target_precision``, see :func:`stats.evaluation.threshold_for_precision`)
    when those are given. ``value`` is None where the metric is 0/0 on the data."""
    _check(n_resamples, confidence)
    ranked = rank_scores(y_true, scores)
    compute = score_kernels(ranked, threshold=threshold, max_fpr=max_fpr, target_precision=target_precision)
    point = _point(compute(None))
    groups = None if strata is None else strata_groups(strata, ranked.items)
    intervals = _bootstrap(compute, ranked.items, n_resamples=n_resamples, confidence=confidence, seed=seed,
                           groups=groups)
    return {name: _with_interval(point[name], intervals[name]) for name in point}


def _with_interval(value: float | None, interval: Interval) -> dict:
    low, high, reason = interval
    if value is None:
        low = high = None
        reason = reason or "undefined on the data"
    return {"value": value, "ci_low": low, "ci_high": high, "ci_reason": reason}


def slice_metrics(
    y_true: Sequence,
    scores: Sequence[float],
    slices: Sequence[Hashable],
    *,
    threshold: float | None = None,
    max_fpr: float | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[Hashable, dict]:
    """The metrics of :func:`bootstrap_score_metrics` per slice (``slices``: one key per item,
    e.g. its country) plus ``"items"``, from one stratified bootstrap: every slice keeps its
    size in every resample and reads its items' weights from the same resamples. A slice
    with one class only has its ROC AUC (and the like) None with the reason."""
    _check(n_resamples, confidence)
    truth = as_truth(y_true)
    values = np.asarray(scores, dtype=np.float64)
    groups = strata_groups(slices, truth.size)
    keys = labels_in_order(slices, [], None)
    ranked = [rank_scores(truth[group], values[group]) for group in groups]
    computes = [score_kernels(r, threshold=threshold, max_fpr=max_fpr, target_precision=None) for r in ranked]
    # a slice's cells indexed by item position overall, so its block of draws maps directly
    local = np.empty(truth.size, dtype=np.int64)
    for group in groups:
        local[group] = np.arange(group.size)
    bounds = np.cumsum([0] + [group.size for group in groups])
    draws: list[dict[str, list[np.ndarray]]] = [{} for _ in groups]
    for drawn in resample_indices(truth.size, n_resamples=n_resamples, seed=seed, groups=groups):
        for index, (compute, sink) in enumerate(zip(computes, draws, strict=True)):
            block = local[drawn[:, bounds[index]:bounds[index + 1]]]
            for name, array in compute(block).items():
                sink.setdefault(name, []).append(array)
    result = {}
    for key, group, compute, sink in zip(keys, groups, computes, draws, strict=True):
        point = _point(compute(None))
        result[key] = {"items": int(group.size)} | {
            name: _with_interval(point[name], percentile_interval(np.concatenate(sink[name]), confidence))
            for name in point
        }
    return result


# --- multi-class -----------------------------------------------------------------------------


def bootstrap_per_label(
    y_true: Sequence[Hashable],
    y_pred: Sequence[Hashable],
    labels: Sequence[Hashable] | None = None,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    strata: Sequence[Hashable] | None = None,
) -> dict[Hashable, dict[str, Interval]]:
    """Percentile bootstrap intervals over items for each label's one-vs-rest precision,
    recall and F1: ``{label: {"precision", "recall", "f1": (low, high, reason)}}``. Each
    resample's confusion matrix is a sum of item weights per (gold, predicted) cell."""
    _check(n_resamples, confidence)
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true and y_pred differ in length: {len(y_true)} and {len(y_pred)}")
    labels = labels_in_order(y_true, y_pred, labels)
    q = len(labels)
    cells = encode(y_true, labels) * q + encode(y_pred, labels)
    draws: dict[str, list[np.ndarray]] = {"precision": [], "recall": [], "f1": []}
    groups = None if strata is None else strata_groups(strata, len(cells))
    for drawn in resample_indices(len(cells), n_resamples=n_resamples, seed=seed, groups=groups):
        matrix = cell_counts(cells, q * q, drawn).reshape(-1, q, q)
        tp = np.diagonal(matrix, axis1=1, axis2=2)
        fp = matrix.sum(axis=1) - tp
        fn = matrix.sum(axis=2) - tp
        with np.errstate(divide="ignore", invalid="ignore"):
            draws["precision"].append(np.where(tp + fp > 0, tp / (tp + fp), np.nan))
            draws["recall"].append(np.where(tp + fn > 0, tp / (tp + fn), np.nan))
            draws["f1"].append(np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan))
    stacked = {name: np.concatenate(chunks) for name, chunks in draws.items()}
    return {label: {name: percentile_interval(values[:, k], confidence) for name, values in stacked.items()}
            for k, label in enumerate(labels)}


__all__ = [
    "bootstrap_per_label",
    "bootstrap_score_metrics",
    "percentile_interval",
    "resample_indices",
    "slice_metrics",
    "strata_groups",
]
