"""An evaluation's results document, computed from arrays (pure: no Django, no I/O).

:func:`evaluation_document` turns one golden set's gold labels and one signal's outputs on the
same items into the JSON document an ``Evaluation`` stores. It calls :mod:`stats` for every
statistic and adds only what stats does not give: a bootstrap CI for Cohen's κ and the
per-label F1 CIs computed from the same resamples (:func:`bootstrap_confusion`), the choice of
the operating threshold, curve downsampling and the error groups.

Conventions
-----------
- "Positive" is the binary question the signal answers: for a score signal whose score label
  is ``violating``, "the gold label is one of the violating labels"; for a score signal of one
  label, "the gold label is that label"; for a label signal, "violating vs not" (its label is
  one of the violating labels).
- An item is predicted positive when ``score >= threshold``. A label signal's binary
  prediction is its label being violating (as scores 1/0 with threshold 1).
- The operating threshold of a score signal is ``threshold`` if given; else the threshold
  reaching ``target_precision`` with the largest recall; else the one with the largest recall
  at FPR <= ``max_fpr``; else 0.5. A threshold of +∞ (nothing reaches the target) flags
  nothing and is stored as ``null`` with ``"flags_nothing": true``: the document is plain JSON,
  never Infinity or NaN.
- A 0/0 ratio is ``None`` and the reason is stored next to it, never NaN or 0.
- Proportions (precision, recall, FPR) have Wilson score intervals without continuity
  correction (:func:`stats.intervals.wilson`); F1, AUPRC, ROC AUC, recall at FPR, the
  threshold at a target precision and κ have percentile bootstrap intervals over items,
  ``n_resamples`` resamples drawn from a generator seeded with ``seed``
  (:mod:`stats.evaluation_ci`); the κ and per-label F1 resamples draw the confusion matrix as
  a multinomial, which is the same distribution (:func:`bootstrap_confusion`). Slices use a
  stratified bootstrap (each slice is resampled to its own size).
- All intervals are 95 % (``confidence``).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stats.agreement import cohen_kappa
from stats.calibration import brier_score, expected_calibration_error, reliability_diagram
from stats.evaluation import (
    binary_metrics,
    per_label_metrics,
    pr_curve,
    recall_at_fpr,
    roc_curve,
    threshold_for_precision,
    threshold_table,
)
from stats.evaluation_ci import bootstrap_score_metrics, percentile_interval
from stats.intervals import wilson

DEFAULT_THRESHOLD = 0.5
DEFAULT_MAX_FPR = 0.01
DEFAULT_TARGET_PRECISION = 0.9
CURVE_POINTS = 200  # points kept per stored curve
MAX_SLICES = 50  # the largest slices; the rest are summed into "(other)"
MISSING_SLICE = "(missing)"
OTHER_SLICE = "(other)"
EXAMPLES = 5  # example items per error group
NO_RULE = "(no rule id)"

REASONS = {
    "precision": "no item was predicted positive (TP + FP = 0)",
    "recall": "no positive item (TP + FN = 0)",
    "f1": "no positive item and none predicted (2TP + FP + FN = 0)",
    "fpr": "no negative item (FP + TN = 0)",
}


@dataclass(frozen=True)
class Inputs:
    """One row per gold item that the signal scored. ``predicted`` is the signal's label (label
    signals) and ``scores`` its score (score signals: required; label signals: its confidence
    in the label, NaN where it gave none)."""

    gold: list[str]
    truth: np.ndarray  # bool: the gold answer of the binary question
    kind: str  # "label" | "score"
    positive: str  # the binary question's positive class: "violating" or a label key
    labels: list[str]  # the taxonomy in its order, then any other label seen
    positive_labels: frozenset[str] = frozenset()  # the labels that answer the binary question "yes"
    predicted: list[str] | None = None
    scores: np.ndarray | None = None
    slices: list[str] | None = None


@dataclass(frozen=True)
class Options:
    threshold: float | None = None
    target_precision: float | None = None
    max_fpr: float | None = None
    n_resamples: int = 1000
    seed: int = 0
    confidence: float = 0.95


# --- JSON helpers ------------------------------------------------------------------------------


def finite(value: Any) -> float | None:
    """A float, or None for None, NaN and ±∞ (plain JSON)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def threshold_json(value: float | None) -> dict:
    """A threshold as JSON: +∞ is ``{"value": null, "flags_nothing": true}``."""
    if value is None:
        return {"value": None, "flags_nothing": False}
    if math.isinf(value):
        return {"value": None, "flags_nothing": True, "note": "+inf: flags nothing"}
    return {"value": float(value), "flags_nothing": False}


def estimate(value: float | None, low: float | None, high: float | None, *, method: str,
             reason: str | None = None) -> dict:
    return {"value": finite(value), "ci_low": finite(low), "ci_high": finite(high), "ci_method": method,
            "reason": reason if value is None else None}


def wilson_estimate(successes: int, n: int, confidence: float, reason: str) -> dict:
    low, high = wilson(successes, n, confidence)
    return estimate(successes / n if n else None, low, high, method="wilson", reason=reason)


def json_safe(obj: Any) -> Any:
    """numpy scalars to Python, NaN/±∞ to None, tuples to lists (recursively)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [json_safe(v) for v in obj.tolist()]
    if isinstance(obj, np.bool_ | bool):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return finite(obj)
    return obj


# --- bootstrap of a confusion matrix -----------------------------------------------------------


def bootstrap_confusion(gold_codes: np.ndarray, pred_codes: np.ndarray, q: int, *, n_resamples: int,
                        seed: int, confidence: float) -> dict[str, Any]:
    """Percentile bootstrap over items for each label's one-vs-rest F1 and for Cohen's κ.

    Resampling n items with replacement and counting them per (gold, predicted) cell is exactly
    a multinomial draw of n over the cells with the observed shares, so each resample's
    confusion matrix is drawn directly (``Generator.multinomial``, seeded), not item by item:
    the same distribution as drawing item indices, in O(q²) per resample instead of O(n).
    κ = (p_o − p_e) / (1 − p_e), undefined (left out of the resample) where p_e = 1.
    Returns ``{"f1": [(low, high, reason) per label], "kappa": (low, high, reason)}``."""
    cells = gold_codes.astype(np.int64) * q + pred_codes.astype(np.int64)
    n = cells.size
    shares = np.bincount(cells, minlength=q * q) / n
    matrix = np.random.default_rng(seed).multinomial(n, shares, size=n_resamples).reshape(-1, q, q)
    matrix = matrix.astype(np.float64)
    tp = np.diagonal(matrix, axis1=1, axis2=2)
    fp = matrix.sum(axis=1) - tp
    fn = matrix.sum(axis=2) - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
        observed = tp.sum(axis=1) / n
        chance = (matrix.sum(axis=2) * matrix.sum(axis=1)).sum(axis=1) / (n * n)
        kappa = np.where(chance < 1, (observed - chance) / (1 - chance), np.nan)
    return {"f1": [percentile_interval(f1[:, k], confidence) for k in range(q)],
            "kappa": percentile_interval(kappa, confidence)}


# --- the document ------------------------------------------------------------------------------


def choose_threshold(truth: np.ndarray, scores: np.ndarray, options: Options) -> tuple[float, str]:
    """The operating threshold and how it was chosen (see the module's conventions)."""
    if options.threshold is not None:
        return float(options.threshold), "given"
    if options.target_precision is not None:
        found = threshold_for_precision(truth, scores, options.target_precision)["threshold"]
        return (math.inf if found is None else found), f"largest recall at precision >= {options.target_precision}"
    if options.max_fpr is not None:
        found = recall_at_fpr(truth, scores, options.max_fpr)["threshold"]
        return (math.inf if found is None else found), f"largest recall at FPR <= {options.max_fpr}"
    return DEFAULT_THRESHOLD, "default"


def _binary(truth: np.ndarray, scores: np.ndarray, threshold: float, confidence: float,
            f1_interval: tuple | None) -> dict:
    m = binary_metrics(truth, scores, threshold)
    tp, fp, tn, fn = m["tp"], m["fp"], m["tn"], m["fn"]
    low, high, reason = f1_interval or (None, None, "not computed")
    return {
        "tp": tp, "fp": fp, "tn": tn, "fn": fn, "support": tp + fn, "negatives": fp + tn,
        "precision": wilson_estimate(tp, tp + fp, confidence, REASONS["precision"]),
        "recall": wilson_estimate(tp, tp + fn, confidence, REASONS["recall"]),
        "fpr": wilson_estimate(fp, fp + tn, confidence, REASONS["fpr"]),
        "f1": {**estimate(m["f1"], low, high, method="percentile bootstrap", reason=REASONS["f1"]),
               "ci_reason": reason if m["f1"] is not None else None},
    }


def _downsample(length: int, keep: Sequence[int]) -> np.ndarray:
    """At most CURVE_POINTS indices, evenly spread, always with the first, the last and ``keep``."""
    if length <= CURVE_POINTS:
        return np.arange(length)
    spread = np.linspace(0, length - 1, CURVE_POINTS - len(keep)).round().astype(np.int64)
    return np.unique(np.r_[spread, [k for k in keep if 0 <= k < length]])


def _curves(truth: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    positives, negatives = int(truth.sum()), int((~truth).sum())
    chosen = binary_metrics(truth, scores, threshold)
    out: dict[str, Any] = {"chosen": {"threshold": threshold_json(threshold), "precision": chosen["precision"],
                                      "recall": chosen["recall"], "fpr": chosen["fpr"]}}
    if positives:
        pr = pr_curve(truth, scores)
        at = int(np.searchsorted(-pr["thresholds"], -threshold, side="right")) - 1  # last threshold <= chosen
        keep = _downsample(pr["thresholds"].size, [at])
        out["pr"] = {"thresholds": pr["thresholds"][keep], "precision": pr["precision"][keep],
                     "recall": pr["recall"][keep], "points": int(pr["thresholds"].size)}
    else:
        out["pr"] = None
        out["pr_reason"] = REASONS["recall"]
    if positives and negatives:
        roc = roc_curve(truth, scores)
        at = int(np.searchsorted(-roc["thresholds"], -threshold, side="right")) - 1
        keep = _downsample(roc["thresholds"].size, [at])
        thresholds = [None if math.isinf(t) else float(t) for t in roc["thresholds"][keep]]
        out["roc"] = {"thresholds": thresholds, "fpr": roc["fpr"][keep], "tpr": roc["tpr"][keep],
                      "points": int(roc["thresholds"].size), "note": "the first threshold, null, is +inf"}
    else:
        out["roc"] = None
        out["roc_reason"] = "a ROC curve needs both positive and negative items"
    return out


def _calibration(event: np.ndarray, probabilities: np.ndarray, what: str) -> dict | None:
    if event.size == 0:
        return None
    return {
        "event": what, "items": int(event.size),
        "reliability": reliability_diagram(event, probabilities, 10, "uniform"),
        "ece_equal_width": expected_calibration_error(event, probabilities, 10, "uniform"),
        "ece_equal_mass": expected_calibration_error(event, probabilities, 10, "quantile"),
        "brier": brier_score(event, probabilities),
        "bins": 10,
    }


def slice_keys(values: Sequence[Any]) -> list[str]:
    """Metadata values as slice keys: strings as they are, other values as JSON, a missing or
    empty value ``(missing)``; beyond the MAX_SLICES largest, ``(other)``."""
    keys = [MISSING_SLICE if v is None or v == "" else (v if isinstance(v, str) else json.dumps(v, sort_keys=True))
            for v in values]
    counts = Counter(keys)
    if len(counts) > MAX_SLICES:
        kept = {key for key, _ in counts.most_common(MAX_SLICES)}
        keys = [key if key in kept else OTHER_SLICE for key in keys]
    return keys


def _slices(inputs: Inputs, scores: np.ndarray, threshold: float, options: Options, max_fpr: float,
            with_scores: bool) -> list[dict]:
    """Each slice's metrics with the intervals of a stratified bootstrap: a stratified
    resample draws every slice to its own size, so a slice's interval is the bootstrap of its
    own items (seeded with ``seed`` + the slice's index in sorted order). Done slice by slice
    with :func:`stats.evaluation_ci.bootstrap_score_metrics`, which is the same distribution as
    :func:`stats.evaluation_ci.slice_metrics` at a third of its time on 100,000 items."""
    assert inputs.slices is not None
    keys = np.asarray(inputs.slices, dtype=object)
    rows = []
    for index, key in enumerate(sorted(set(inputs.slices))):
        mask = keys == key
        truth, values = inputs.truth[mask], scores[mask]
        boot = bootstrap_score_metrics(truth, values, threshold=threshold, max_fpr=max_fpr if with_scores else None,
                                       n_resamples=options.n_resamples, confidence=options.confidence,
                                       seed=options.seed + index)
        row = {"slice": key, "items": int(mask.sum()),
               **_binary(truth, values, threshold, options.confidence,
                         (boot["f1"]["ci_low"], boot["f1"]["ci_high"], boot["f1"]["ci_reason"]))}
        if with_scores:
            for name in ("roc_auc", "average_precision", "recall_at_fpr"):
                m = boot[name]
                row[name] = {**estimate(m["value"], m["ci_low"], m["ci_high"],
                                        method="percentile bootstrap within the slice",
                                        reason=m["ci_reason"] if m["value"] is None else None),
                             "ci_reason": m["ci_reason"]}
        rows.append(row)
    return sorted(rows, key=lambda r: (-r["items"], r["slice"]))


def evaluation_document(inputs: Inputs, options: Options) -> tuple[dict, np.ndarray]:
    """The results document (JSON-safe) and each item's binary prediction (bool array, for the
    error analysis). See the module docstring for the conventions."""
    truth, n = inputs.truth, inputs.truth.size
    if n == 0:
        raise ValueError("no gold item has a score: nothing to evaluate")
    labels = inputs.labels
    if inputs.kind == "score":
        assert inputs.scores is not None
        scores = inputs.scores
        threshold, how = choose_threshold(truth, scores, options)
        gold_for_labels = [inputs.positive if t else f"not {inputs.positive}" for t in truth]
    else:
        assert inputs.predicted is not None
        scores = np.fromiter((p in inputs.positive_labels for p in inputs.predicted), dtype=np.float64, count=n)
        threshold, how = 1.0, "a label signal: its label is violating"
        gold_for_labels = inputs.gold
    predicted = scores >= threshold
    if inputs.kind == "score":
        pred_for_labels = [inputs.positive if p else f"not {inputs.positive}" for p in predicted]
        labels = [inputs.positive, f"not {inputs.positive}"]
    else:
        pred_for_labels = list(inputs.predicted or [])

    max_fpr = options.max_fpr if options.max_fpr is not None else DEFAULT_MAX_FPR
    target = options.target_precision if options.target_precision is not None else DEFAULT_TARGET_PRECISION
    boot = None
    if inputs.kind == "score":
        boot = bootstrap_score_metrics(truth, scores, threshold=threshold, max_fpr=max_fpr, target_precision=target,
                                       n_resamples=options.n_resamples, confidence=options.confidence,
                                       seed=options.seed)

    index = {label: i for i, label in enumerate(labels)}
    gold_codes = np.fromiter((index[g] for g in gold_for_labels), dtype=np.int64, count=n)
    pred_codes = np.fromiter((index[p] for p in pred_for_labels), dtype=np.int64, count=n)
    confusion_boot = bootstrap_confusion(gold_codes, pred_codes, len(labels), n_resamples=options.n_resamples,
                                         seed=options.seed, confidence=options.confidence)
    if boot is not None:
        f1_interval = (boot["f1"]["ci_low"], boot["f1"]["ci_high"], boot["f1"]["ci_reason"])
    else:
        binary_boot = bootstrap_confusion(truth.astype(np.int64), predicted.astype(np.int64), 2,
                                          n_resamples=options.n_resamples, seed=options.seed,
                                          confidence=options.confidence)
        f1_interval = binary_boot["f1"][1]

    per_label = per_label_metrics(gold_for_labels, pred_for_labels, labels, confidence=options.confidence)
    per_label_rows = []
    for k, label in enumerate(labels):
        m = per_label[label]
        low, high, reason = confusion_boot["f1"][k]
        per_label_rows.append({
            "label": label, "support": m["support"], "tp": m["tp"], "fp": m["fp"], "tn": m["tn"], "fn": m["fn"],
            "precision": wilson_estimate(m["tp"], m["tp"] + m["fp"], options.confidence, REASONS["precision"]),
            "recall": wilson_estimate(m["tp"], m["tp"] + m["fn"], options.confidence, REASONS["recall"]),
            "fpr": wilson_estimate(m["fp"], m["fp"] + m["tn"], options.confidence, REASONS["fpr"]),
            "f1": {**estimate(m["f1"], low, high, method="percentile bootstrap", reason=REASONS["f1"]),
                   "ci_reason": reason if m["f1"] is not None else None},
        })
    matrix = np.bincount(gold_codes * len(labels) + pred_codes, minlength=len(labels) ** 2).reshape(len(labels), -1)
    kappa = cohen_kappa(gold_for_labels, pred_for_labels, labels)
    k_low, k_high, k_reason = confusion_boot["kappa"]

    document: dict[str, Any] = {
        "kind": inputs.kind,
        "positive": inputs.positive,
        "threshold": {**threshold_json(threshold), "chosen_by": how},
        "items": n,
        "binary": _binary(truth, scores, threshold, options.confidence, f1_interval),
        "labels": labels,
        "per_label": per_label_rows,
        "confusion_matrix": {"labels": labels, "rows": "gold", "columns": "signal", "counts": matrix},
        "cohen_kappa": {**estimate(kappa.value, k_low, k_high, method="percentile bootstrap", reason=kappa.reason),
                        "ci_reason": k_reason if kappa.value is not None else None},
    }
    if inputs.kind == "score" and boot is not None:
        rf = recall_at_fpr(truth, scores, max_fpr) if truth.any() and not truth.all() else None
        tp_ = threshold_for_precision(truth, scores, target)

        def boot_estimate(name: str, reason: str) -> dict:
            m = boot[name]
            return {**estimate(m["value"], m["ci_low"], m["ci_high"], method="percentile bootstrap",
                               reason=reason), "ci_reason": m["ci_reason"] if m["value"] is not None else None}

        document["scores"] = {
            "average_precision": boot_estimate("average_precision", REASONS["recall"]),
            "roc_auc": boot_estimate("roc_auc", "ROC AUC needs both positive and negative items"),
            "recall_at_fpr": {**boot_estimate("recall_at_fpr", "needs both positive and negative items"),
                              "max_fpr": max_fpr,
                              "threshold": threshold_json(rf["threshold"]) if rf else threshold_json(None),
                              "fpr": rf["fpr"] if rf else None},
            "threshold_at_precision": {
                **boot_estimate("threshold_at_precision", tp_["undefined"].get("threshold", "")),
                "target_precision": target, "precision": tp_["precision"], "recall": tp_["recall"],
                "fpr": tp_["fpr"]},
            "threshold_table": threshold_table(truth, scores),
            "curves": _curves(truth, scores, threshold),
        }
        document["calibration"] = _calibration(truth, scores, f"gold is {inputs.positive}")
    else:
        document["scores"] = None
        confidence = inputs.scores if inputs.scores is not None else np.full(n, np.nan)
        given = np.isfinite(confidence)
        right = np.asarray(inputs.gold, dtype=object) == np.asarray(pred_for_labels, dtype=object)
        document["calibration"] = _calibration(right[given], confidence[given], "the signal's label is the gold label")
        if document["calibration"] is None:
            document["calibration_reason"] = "the signal gave no confidence with its labels"
    if inputs.slices is not None:
        document["slices"] = _slices(inputs, scores, threshold, options, max_fpr, inputs.kind == "score")
    return json_safe(document), predicted


# --- error analysis ----------------------------------------------------------------------------


def error_groups(*, refs: Sequence[Hashable], truth: np.ndarray, predicted: np.ndarray,
                 gold: Sequence[str], signal_labels: Sequence[str] | None,
                 gold_rule_ids: Sequence[Sequence[str]], signal_rule_ids: Sequence[Sequence[str]] | None,
                 examples: int = EXAMPLES) -> dict:
    """False negatives (gold positive, predicted negative) and false positives, each grouped by
    rule id (from the gold labels and, when given, from the signal; an item with none is under
    ``(no rule id)``; an item with several rule ids is counted under each) and by label (the gold
    label for false negatives, the signal's label, or the gold label for score signals, for false
    positives), with counts and the first ``examples`` item references per group."""
    out: dict[str, Any] = {}
    for kind, mask in (("false_negatives", truth & ~predicted), ("false_positives", ~truth & predicted)):
        positions = np.flatnonzero(mask)
        by_rule: dict[str, list] = {}
        by_label: dict[str, list] = {}
        for i in positions.tolist():
            rules = set(gold_rule_ids[i]) | (set(signal_rule_ids[i]) if signal_rule_ids is not None else set())
            for rule in sorted(rules) or [NO_RULE]:
                by_rule.setdefault(rule, []).append(refs[i])
            label = gold[i] if kind == "false_negatives" or signal_labels is None else signal_labels[i]
            by_label.setdefault(label, []).append(refs[i])
        out[kind] = {
            "count": int(positions.size),
            "by_rule": [{"rule_id": k, "count": len(v), "examples": v[:examples]}
                        for k, v in sorted(by_rule.items(), key=lambda kv: (-len(kv[1]), kv[0]))],
            "by_label": [{"label": k, "count": len(v), "examples": v[:examples]}
                         for k, v in sorted(by_label.items(), key=lambda kv: (-len(kv[1]), kv[0]))],
        }
    return out


def headline(document: dict) -> list[tuple[str, dict]]:
    """The headline metrics of a stored document, in the order the CLI and the page show them:
    (name, estimate with ``value``, ``ci_low``, ``ci_high``, ``reason``)."""
    binary, positive = document["binary"], document["positive"]
    rows = [(f"{positive}: {name}", binary[key]) for name, key in
            (("precision", "precision"), ("recall", "recall"), ("F1", "f1"), ("FPR", "fpr"))]
    scores = document.get("scores")
    if scores:
        rows += [("AUPRC", scores["average_precision"]), ("ROC AUC", scores["roc_auc"]),
                 (f"recall at FPR <= {scores['recall_at_fpr']['max_fpr']:g}", scores["recall_at_fpr"]),
                 (f"threshold for precision >= {scores['threshold_at_precision']['target_precision']:g}",
                  scores["threshold_at_precision"])]
    rows.append(("Cohen's kappa (signal vs gold)", document["cohen_kappa"]))
    return rows


def estimate_text(e: dict | None, digits: int = 3) -> str:
    """``0.812 [0.771, 0.850]``, ``undefined (reason)`` or ``0.812 (no CI: reason)``."""
    if not e or e.get("value") is None:
        return f"undefined ({(e or {}).get('reason') or 'no data'})"
    text = f"{e['value']:.{digits}f}"
    if e.get("ci_low") is None:
        return f"{text} (no CI: {e.get('ci_reason') or 'undefined'})"
    return f"{text} [{e['ci_low']:.{digits}f}, {e['ci_high']:.{digits}f}]"


__all__ = ["Inputs", "Options", "bootstrap_confusion", "error_groups", "estimate_text", "evaluation_document",
           "finite", "headline", "json_safe", "slice_keys", "threshold_json"]
