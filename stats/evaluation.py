"""A signal's metrics against gold labels (pure: no Django, no I/O).

Conventions
-----------
- ``y_true`` is one boolean per item (True = positive, e.g. "violating"); ``scores`` one
  finite float per item, higher meaning more likely positive. Label-only signals pass 0/1
  scores and threshold 1. NaN or infinite scores, unequal lengths or an empty input raise
  ValueError.
- An item is predicted positive when ``score >= threshold``.
- A 0/0 ratio is undefined: ``None``, never NaN or 0, and the reason is in the result's
  ``"undefined"`` dict under the metric's name.
- Thresholds are chosen among the distinct scores plus +∞ (+∞ flags nothing), without
  interpolation; between thresholds of equal merit, the larger wins.
- F1 = 2·TP / (2·TP + FP + FN); AUPRC is average precision, Σ (R_k − R_{k−1}) P_k over the
  distinct scores (scikit-learn's ``average_precision_score``, no interpolation); ROC AUC is
  the trapezoid under the full ROC curve (ties count one half), as ``roc_auc_score``.
- Multi-class: ``labels`` fixes the order of the taxonomy; a label outside it is an error.

Implementation: items are ranked once by score (:class:`RankedScores`); every metric is a
function of the cumulative TP and FP counts at each distinct score, computed for a batch of
item weights at once. A point estimate is weight 1 per item; a bootstrap resample is the
number of times each item was drawn (see :mod:`stats.evaluation_ci`), so point estimates and
resamples run the same code.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from .agreement import Estimate, undefined
from .intervals import clopper_pearson, wilson

DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(21))


# --- input -----------------------------------------------------------------------------------


def as_truth(y_true: Sequence) -> np.ndarray:
    """Booleans from booleans or 0/1; anything else raises ValueError."""
    truth = np.asarray(y_true)
    if truth.ndim != 1 or truth.size == 0:
        raise ValueError("y_true: a non-empty one-dimensional sequence")
    if truth.dtype != bool:
        if not np.isin(truth, (0, 1)).all():
            raise ValueError("y_true: booleans or 0/1 only")
        truth = truth.astype(bool)
    return truth


def as_scores(scores: Sequence[float], size: int) -> np.ndarray:
    values = np.asarray(scores, dtype=np.float64)
    if values.shape != (size,):
        raise ValueError(f"scores: {values.size} values for {size} items")
    if not np.isfinite(values).all():
        raise ValueError("scores: every score must be a finite number")
    return values


def encode(values: Sequence[Hashable], labels: Sequence[Hashable]) -> np.ndarray:
    """Integer codes of ``values`` in ``labels`` (vectorised: one loop over distinct values)."""
    index = {label: i for i, label in enumerate(labels)}
    if len(index) != len(labels):
        raise ValueError("labels: duplicate label")
    array = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values
    distinct, inverse = np.unique(array, return_inverse=True)
    try:
        lookup = np.fromiter((index[value] for value in distinct), dtype=np.int64, count=len(distinct))
    except KeyError as exc:
        raise ValueError(f"label {exc.args[0]!r} is not in labels") from None
    return lookup[inverse.reshape(-1)]


# --- ranked scores and cumulative counts -------------------------------------------------------


@dataclass(frozen=True)
class RankedScores:
    """Items grouped by distinct score (descending) and class: item i falls in *cell*
    ``cells[i] = positive·K + k`` where k is its score's rank among the K distinct scores."""

    thresholds: np.ndarray  # (K,) the distinct scores, descending
    cells: np.ndarray  # (n,) each item's cell, in the items' original order
    positive_columns: np.ndarray  # distinct scores held by a positive item: where TP can grow
    mixed: bool  # some distinct score is held by both a positive and a negative item

    @property
    def items(self) -> int:
        return int(self.cells.size)

    @property
    def n_cells(self) -> int:
        return 2 * int(self.thresholds.size)

    def position(self, threshold: float) -> int:
        """How many distinct scores are >= threshold (0: nothing flagged)."""
        return int(np.searchsorted(-self.thresholds, -threshold, side="right"))


def rank_scores(y_true: Sequence, scores: Sequence[float]) -> RankedScores:
    truth = as_truth(y_true)
    values = as_scores(scores, truth.size)
    distinct, rank = np.unique(-values, return_inverse=True)  # ascending −score: descending score
    rank = rank.reshape(-1)
    positive_columns = np.unique(rank[truth])
    mixed = bool(np.intersect1d(positive_columns, rank[~truth], assume_unique=False).size)
    return RankedScores(-distinct, truth.astype(np.int64) * distinct.size + rank, positive_columns, mixed)


def cell_counts(cells: np.ndarray, n_cells: int, drawn: np.ndarray | None = None) -> np.ndarray:
    """(B, n_cells) counts of items per cell: every item once (``drawn`` None), or the items
    at the positions drawn in each resample, ``drawn`` of shape (B, n)."""
    if drawn is None:
        return np.bincount(cells, minlength=n_cells)[None, :]
    out = np.empty((drawn.shape[0], n_cells), dtype=np.int64)
    for row in range(drawn.shape[0]):
        out[row] = np.bincount(cells[drawn[row]], minlength=n_cells)
    return out


@dataclass(frozen=True)
class Counts:
    """Cumulative counts at each distinct score (descending), one row per weighting, shape
    (B, K), int64: what every score metric is computed from. The ``*_at_positive`` arrays
    are the same at the scores a positive item holds (:attr:`RankedScores.positive_columns`),
    the only columns where recall changes, which is all AUPRC and ROC AUC need."""

    tp: np.ndarray  # positives with score >= the k-th distinct score
    fp: np.ndarray  # negatives likewise
    new_tp: np.ndarray  # positives exactly at the k-th distinct score (tp's increments)
    new_fp: np.ndarray
    mixed: bool
    positive_columns: np.ndarray

    @property
    def positives(self) -> np.ndarray:
        return self.tp[:, -1]

    @property
    def negatives(self) -> np.ndarray:
        return self.fp[:, -1]


def cumulative_counts(ranked: RankedScores, drawn: np.ndarray | None = None) -> Counts:
    """:class:`Counts` of every item (``drawn`` None: the point estimate) or of the items
    drawn in each bootstrap resample (``drawn``: (B, n) item positions)."""
    per_cell = cell_counts(ranked.cells, ranked.n_cells, drawn)
    k = ranked.thresholds.size
    new_fp, new_tp = per_cell[:, :k], per_cell[:, k:]
    return Counts(np.cumsum(new_tp, axis=1), np.cumsum(new_fp, axis=1), new_tp, new_fp, ranked.mixed,
                  ranked.positive_columns)


def counts_at(ranked: RankedScores, counts: Counts, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """TP and FP (shape (B,)) of the rule ``score >= threshold``."""
    k = ranked.position(threshold)
    if k == 0:
        zeros = np.zeros(counts.tp.shape[0], dtype=np.int64)
        return zeros, zeros
    return counts.tp[:, k - 1], counts.fp[:, k - 1]


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator as floats, NaN where the denominator is 0 (0/0 here: counts)."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1.0), np.nan)


def kernel_binary(tp: np.ndarray, fp: np.ndarray, positives: np.ndarray, negatives: np.ndarray) -> dict:
    """Precision, recall, F1 and FPR from batched counts; NaN marks 0/0."""
    fn = positives - tp
    return {
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, positives),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "fpr": _ratio(fp, negatives),
    }


def _rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, b)


def kernel_roc_auc(counts: Counts) -> np.ndarray:
    """Mann–Whitney form of the trapezoid: each positive pairs with every negative scored
    below it (1) and every negative tied with it (½); summed over positive columns only."""
    cols = counts.positive_columns
    new_tp = counts.new_tp[:, cols]
    area = _rowdot(new_tp, counts.negatives[:, None] - counts.fp[:, cols]).astype(np.float64)
    if counts.mixed:
        area += 0.5 * _rowdot(new_tp, counts.new_fp[:, cols])
    return _ratio(area, counts.positives.astype(np.float64) * counts.negatives)


def precision_at_positive(counts: Counts) -> np.ndarray:
    """tp / (tp + fp) at the positive columns; 0 where nothing is flagged yet."""
    cols = counts.positive_columns
    tp = counts.tp[:, cols]
    return tp / np.maximum(tp + counts.fp[:, cols], 1)


def kernel_average_precision(counts: Counts, precision: np.ndarray | None = None) -> np.ndarray:
    """Σ_k (R_k − R_{k−1}) P_k = Σ_k new_tp_k · P_k / positives (new_tp is 0 off the positive
    columns)."""
    if precision is None:
        precision = precision_at_positive(counts)
    return _ratio(_rowdot(counts.new_tp[:, counts.positive_columns].astype(np.float64), precision),
                  counts.positives)


def _largest_fp_allowed(negatives: np.ndarray, max_fpr: float) -> np.ndarray:
    """Per row, the largest integer c with c / negatives <= max_fpr, in the same floating
    point arithmetic as FPR itself (so the bootstrap and the point estimate agree)."""
    limit = np.floor(max_fpr * negatives.astype(np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        limit = np.where((limit + 1) / negatives <= max_fpr, limit + 1, limit)
        limit = np.where((limit >= 0) & (limit / negatives > max_fpr), limit - 1, limit)
    return limit


def kernel_recall_at_fpr(counts: Counts, max_fpr: float) -> tuple[np.ndarray, np.ndarray]:
    """(recall, k) per row: k = index of the chosen distinct score, −1 for +∞. FP and TP
    only grow down the ranking, so one binary search per row finds each."""
    positives, negatives = counts.positives, counts.negatives
    allowed = _largest_fp_allowed(negatives, max_fpr)
    rows = counts.tp.shape[0]
    best = np.zeros(rows, dtype=np.int64)
    k = np.full(rows, -1, dtype=np.int64)
    for row in range(rows):
        last = int(np.searchsorted(counts.fp[row], allowed[row], side="right")) - 1
        if last >= 0 and counts.tp[row, last] > 0:
            best[row] = counts.tp[row, last]
            # ties to the larger threshold: the first score reaching the best TP
            k[row] = int(np.searchsorted(counts.tp[row], best[row], side="left"))
    recall = _ratio(best, positives)
    return np.where(negatives > 0, recall, np.nan), k


def kernel_threshold_for_precision(counts: Counts, target: float, precision: np.ndarray | None = None) -> np.ndarray:
    """k per row: the distinct score with the largest recall among those whose precision >=
    target, ties to the larger threshold; −1 when none reaches it. TP only grows, so the
    largest recall is at the last feasible score, and the first score with that TP is
    feasible too (same TP, fewer flagged) and holds a positive: only positive columns need
    checking (a score without a positive has the TP and less precision of the one above)."""
    if precision is None:
        precision = precision_at_positive(counts)
    cols = counts.positive_columns
    tp = counts.tp[:, cols]
    feasible = (precision >= target) & (tp + counts.fp[:, cols] > 0)
    k = np.full(feasible.shape[0], -1, dtype=np.int64)
    if feasible.shape[1] == 0:
        return k
    last = feasible.shape[1] - 1 - np.argmax(feasible[:, ::-1], axis=1)
    found = feasible[np.arange(feasible.shape[0]), last]
    for row in np.flatnonzero(found):
        k[row] = int(np.searchsorted(counts.tp[row], tp[row, last[row]], side="left"))
    return k


_REASONS = {
    "precision": "no item was predicted positive (TP + FP = 0)",
    "recall": "no positive item (TP + FN = 0)",
    "f1": "no positive item and none predicted (2TP + FP + FN = 0)",
    "fpr": "no negative item (FP + TN = 0)",
}


# --- the public metrics ------------------------------------------------------------------------


def binary_metrics(y_true: Sequence, scores: Sequence[float], threshold: float) -> dict:
    """Precision, recall, F1 and FPR of ``score >= threshold`` against ``y_true``, with the
    counts: ``{"precision", "recall", "f1", "fpr", "tp", "fp", "tn", "fn", "undefined"}``.

    A 0/0 ratio is None and ``undefined[name]`` says why (e.g. precision when nothing is
    flagged); ``undefined`` is empty when every ratio is defined.
    """
    truth = as_truth(y_true)
    values = as_scores(scores, truth.size)
    flagged = values >= threshold
    tp = int(np.count_nonzero(flagged & truth))
    fp = int(np.count_nonzero(flagged & ~truth))
    fn = int(np.count_nonzero(truth)) - tp
    tn = truth.size - tp - fp - fn
    ratios = kernel_binary(np.array([tp], float), np.array([fp], float), np.array([tp + fn], float),
                           np.array([fp + tn], float))
    metrics = {name: (None if math.isnan(array[0]) else float(array[0])) for name, array in ratios.items()}
    reasons = {name: _REASONS[name] for name, value in metrics.items() if value is None}
    return {**metrics, "tp": tp, "fp": fp, "tn": tn, "fn": fn, "undefined": reasons}


def recall_at_fpr(y_true: Sequence, scores: Sequence[float], max_fpr: float) -> dict:
    """The largest recall whose FPR <= ``max_fpr``: ``{"recall", "threshold", "fpr",
    "undefined"}``. Thresholds are the distinct scores plus +∞ (which flags nothing: recall
    0, FPR 0, always allowed), no interpolation, ties to the larger threshold. Undefined
    (None) without positives or without negatives."""
    if not 0 <= max_fpr <= 1:
        raise ValueError(f"max_fpr: must be in [0, 1], not {max_fpr!r}")
    ranked = rank_scores(y_true, scores)
    counts = cumulative_counts(ranked)
    positives, negatives = int(counts.positives[0]), int(counts.negatives[0])
    if positives == 0 or negatives == 0:
        reason = _REASONS["recall"] if positives == 0 else _REASONS["fpr"]
        return {"recall": None, "threshold": None, "fpr": None, "undefined": {"recall": reason}}
    recall, k = kernel_recall_at_fpr(counts, max_fpr)
    k = int(k[0])
    threshold = math.inf if k < 0 else float(ranked.thresholds[k])
    fpr = 0.0 if k < 0 else float(counts.fp[0, k] / negatives)
    return {"recall": float(recall[0]), "threshold": threshold, "fpr": fpr, "undefined": {}}


def roc_auc(y_true: Sequence, scores: Sequence[float]) -> Estimate:
    """Area under the ROC curve (trapezoid, ties one half); undefined with one class only."""
    ranked = rank_scores(y_true, scores)
    value = kernel_roc_auc(cumulative_counts(ranked))[0]
    if math.isnan(value):
        return undefined("ROC AUC needs both positive and negative items", ranked.items)
    return Estimate(value=float(value), units=ranked.items)


def average_precision(y_true: Sequence, scores: Sequence[float]) -> Estimate:
    """AUPRC as average precision, Σ (R_k − R_{k−1}) P_k over distinct scores; undefined
    without positives."""
    ranked = rank_scores(y_true, scores)
    value = kernel_average_precision(cumulative_counts(ranked))[0]
    if math.isnan(value):
        return undefined(_REASONS["recall"], ranked.items)
    return Estimate(value=float(value), units=ranked.items)


def roc_curve(y_true: Sequence, scores: Sequence[float]) -> dict:
    """Every ROC point, none dropped: ``{"thresholds", "fpr", "tpr"}`` as arrays starting at
    (+∞, 0, 0) and then one point per distinct score, descending (scikit-learn's
    ``roc_curve(drop_intermediate=False)``). Raises ValueError with one class only."""
    ranked = rank_scores(y_true, scores)
    counts = cumulative_counts(ranked)
    tp, fp = counts.tp.astype(np.float64), counts.fp.astype(np.float64)
    if tp[0, -1] == 0 or fp[0, -1] == 0:
        raise ValueError("a ROC curve needs both positive and negative items")
    return {
        "thresholds": np.r_[np.inf, ranked.thresholds],
        "fpr": np.r_[0.0, fp[0] / fp[0, -1]],
        "tpr": np.r_[0.0, tp[0] / tp[0, -1]],
    }


def pr_curve(y_true: Sequence, scores: Sequence[float]) -> dict:
    """Precision and recall at every distinct score, descending: ``{"thresholds",
    "precision", "recall"}`` (precision is always defined there: something is flagged).
    Raises ValueError without positives."""
    ranked = rank_scores(y_true, scores)
    counts = cumulative_counts(ranked)
    tp, fp = counts.tp.astype(np.float64), counts.fp.astype(np.float64)
    if tp[0, -1] == 0:
        raise ValueError("a PR curve needs positive items")
    return {"thresholds": ranked.thresholds.copy(), "precision": tp[0] / (tp[0] + fp[0]), "recall": tp[0] / tp[0, -1]}


def threshold_for_precision(y_true: Sequence, scores: Sequence[float], target_precision: float) -> dict:
    """The threshold reaching ``target_precision`` with the largest recall: ``{"threshold",
    "precision", "recall", "fpr", "flagged", "undefined"}``. Among the distinct scores (+∞
    flags nothing, so its precision is undefined), ties to the larger threshold. All None,
    with a reason, when no threshold reaches the target."""
    if not 0 <= target_precision <= 1:
        raise ValueError(f"target_precision: must be in [0, 1], not {target_precision!r}")
    ranked = rank_scores(y_true, scores)
    counts = cumulative_counts(ranked)
    tp, fp = counts.tp.astype(np.float64), counts.fp.astype(np.float64)
    k = int(kernel_threshold_for_precision(counts, target_precision)[0])
    if k < 0:
        reason = f"no threshold reaches precision {target_precision}"
        return {"threshold": None, "precision": None, "recall": None, "fpr": None, "flagged": None,
                "undefined": {"threshold": reason}}
    positives, negatives = tp[0, -1], fp[0, -1]
    return {
        "threshold": float(ranked.thresholds[k]),
        "precision": float(tp[0, k] / (tp[0, k] + fp[0, k])),
        "recall": float(tp[0, k] / positives),
        "fpr": None if negatives == 0 else float(fp[0, k] / negatives),
        "flagged": float((tp[0, k] + fp[0, k]) / ranked.items),
        "undefined": {} if negatives else {"fpr": _REASONS["fpr"]},
    }


def threshold_table(
    y_true: Sequence, scores: Sequence[float], thresholds: Sequence[float] = DEFAULT_THRESHOLDS
) -> list[dict]:
    """One row per threshold (default 0.00, 0.05, …, 1.00), the table a policy team picks
    from: ``{"threshold", "precision", "recall", "fpr", "flagged", "tp", "fp"}``; flagged is
    the share of items with ``score >= threshold``; an undefined ratio is None."""
    ranked = rank_scores(y_true, scores)
    counts = cumulative_counts(ranked)
    positives, negatives = counts.positives, counts.negatives
    rows = []
    for threshold in thresholds:
        row_tp, row_fp = counts_at(ranked, counts, float(threshold))
        ratios = kernel_binary(row_tp, row_fp, positives, negatives)
        rows.append({
            "threshold": float(threshold),
            **{name: (None if math.isnan(ratios[name][0]) else float(ratios[name][0]))
               for name in ("precision", "recall", "fpr")},
            "flagged": float((row_tp[0] + row_fp[0]) / ranked.items),
            "tp": int(row_tp[0]),
            "fp": int(row_fp[0]),
        })
    return rows


# --- multi-class ------------------------------------------------------------------------------


def labels_in_order(y_true: Sequence[Hashable], y_pred: Sequence[Hashable],
                    labels: Sequence[Hashable] | None) -> list[Hashable]:
    if labels is not None:
        return list(labels)
    return sorted(set(np.unique(np.asarray(y_true, dtype=object))) | set(np.unique(np.asarray(y_pred, dtype=object))),
                  key=lambda value: (type(value).__name__, value))


def confusion_matrix(
    y_true: Sequence[Hashable], y_pred: Sequence[Hashable], labels: Sequence[Hashable] | None = None
) -> np.ndarray:
    """(q, q) counts, rows gold, columns predicted, in the order of ``labels`` (default: the
    sorted labels seen), as scikit-learn's ``confusion_matrix``."""
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true and y_pred differ in length: {len(y_true)} and {len(y_pred)}")
    labels = labels_in_order(y_true, y_pred, labels)
    q = len(labels)
    codes = encode(y_true, labels) * q + encode(y_pred, labels)
    return np.bincount(codes, minlength=q * q).reshape(q, q)


def per_label_metrics(
    y_true: Sequence[Hashable],
    y_pred: Sequence[Hashable],
    labels: Sequence[Hashable] | None = None,
    *,
    confidence: float = 0.95,
) -> dict[Hashable, dict]:
    """One-vs-rest metrics per label: ``{label: {"support", "tp", "fp", "tn", "fn",
    "precision", "recall", "f1", "fpr", "precision_ci", "recall_ci", "fpr_ci",
    "undefined"}}``. CIs are Wilson intervals (``(None, None)`` for 0/0)."""
    matrix = confusion_matrix(y_true, y_pred, labels)
    labels = labels_in_order(y_true, y_pred, labels)
    n = int(matrix.sum())
    result = {}
    for k, label in enumerate(labels):
        tp = int(matrix[k, k])
        fp = int(matrix[:, k].sum()) - tp
        fn = int(matrix[k, :].sum()) - tp
        tn = n - tp - fp - fn
        ratios = kernel_binary(np.array([tp], float), np.array([fp], float), np.array([tp + fn], float),
                               np.array([fp + tn], float))
        metrics = {name: (None if math.isnan(array[0]) else float(array[0])) for name, array in ratios.items()}
        result[label] = {
            "support": tp + fn, "tp": tp, "fp": fp, "tn": tn, "fn": fn, **metrics,
            "precision_ci": wilson(tp, tp + fp, confidence),
            "recall_ci": wilson(tp, tp + fn, confidence),
            "fpr_ci": wilson(fp, fp + tn, confidence),
            "undefined": {name: _REASONS[name] for name, value in metrics.items() if value is None},
        }
    return result


def collapse_to_violating(labels: Sequence[Hashable], violating_labels: Sequence[Hashable]) -> np.ndarray:
    """"Violating vs not": True where the label is one of ``violating_labels``."""
    array = np.asarray(labels, dtype=object)
    distinct, inverse = np.unique(array, return_inverse=True)
    chosen = set(violating_labels)
    mask = np.fromiter((value in chosen for value in distinct), dtype=bool, count=len(distinct))
    return mask[inverse.reshape(-1)]


__all__ = [
    "DEFAULT_THRESHOLDS",
    "Counts",
    "RankedScores",
    "average_precision",
    "binary_metrics",
    "clopper_pearson",
    "collapse_to_violating",
    "confusion_matrix",
    "cumulative_counts",
    "per_label_metrics",
    "precision_at_positive",
    "pr_curve",
    "rank_scores",
    "recall_at_fpr",
    "roc_auc",
    "roc_curve",
    "threshold_for_precision",
    "threshold_table",
    "wilson",
]
