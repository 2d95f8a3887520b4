"""A comparison's results document: two signal versions on the same gold items, paired (pure:
no Django, no I/O).

:func:`comparison_document` takes the items both versions scored, in one order, and returns
the JSON document a ``Comparison`` stores. Every statistic comes from :mod:`stats.comparison`;
this module chooses the thresholds, builds the one-vs-rest and per-slice inputs and names the
flipped items.

Conventions
-----------
- Differences are B − A ("new minus old").
- Binary question and threshold as in :mod:`evaluation.metrics`: an item is predicted positive
  when ``score >= threshold``; each score signal gets its own threshold by the same rule
  (``threshold`` if given, else the one reaching ``target_precision`` with the largest recall,
  else the largest recall at FPR <= ``max_fpr``, else 0.5); a label signal predicts positive
  when its label is a positive label (scores 1/0, threshold 1). A threshold of +∞ (flags
  nothing) is stored as ``null`` with ``"flags_nothing": true``.
- Δrecall@FPR (``max_fpr``, default 0.01) needs two score signals; with a label signal it is
  None with the reason.
- "Correct" (McNemar, flips): with two label signals, the signal's label is the gold label;
  otherwise the binary prediction equals the gold answer of the binary question.
- Per label (one-vs-rest, "gold is L" vs "signal says L"): two label signals only.
- Intervals: percentile, 95 %, one paired bootstrap over items per table (the same drawn items
  for A and B), ``n_resamples`` resamples seeded with ``seed`` (slice ``i`` in sorted order:
  ``seed + i``, its own items). A 0/0 is None with the reason, never NaN or 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from evaluation.metrics import DEFAULT_MAX_FPR, REASONS, Options, choose_threshold, json_safe, threshold_json
from stats.comparison import flips, mcnemar_exact, paired_bootstrap

FLIPS_SHOWN = 20  # item refs kept per flip direction
METRIC_REASONS = {"precision": REASONS["precision"], "recall": REASONS["recall"], "f1": REASONS["f1"],
                  "recall_at_fpr": "needs both positive and negative items"}


@dataclass(frozen=True)
class Side:
    """One signal version's outputs on the compared items. ``kind`` "score": ``scores`` required;
    "label": ``labels`` required (the signal's label per item)."""

    kind: str
    scores: np.ndarray | None = None
    labels: list[str] | None = None


@dataclass(frozen=True)
class Paired:
    """The items both versions scored, in one order."""

    refs: list[str]
    gold: list[str]
    truth: np.ndarray  # bool: the gold answer of the binary question
    positive: str
    positive_labels: frozenset[str]
    labels: list[str]  # the taxonomy in its order, then any other label seen
    a: Side
    b: Side
    slices: list[str] | None = None
    item_ids: list[int] | None = None  # for links from the flipped items


def _binary_scores(side: Side, truth: np.ndarray, positive_labels: frozenset[str],
                   options: Options) -> tuple[np.ndarray, float, str]:
    """(scores, threshold, how it was chosen) of one side for the binary question."""
    if side.kind == "score":
        assert side.scores is not None
        threshold, how = choose_threshold(truth, side.scores, options)
        return side.scores, threshold, how
    assert side.labels is not None
    scores = np.fromiter((label in positive_labels for label in side.labels), dtype=np.float64,
                         count=len(side.labels))
    return scores, 1.0, "a label signal: its label is positive"


def _deltas(truth: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray, *, threshold_a: float,
            threshold_b: float, max_fpr: float | None, options: Options, seed: int) -> dict[str, dict]:
    """Paired bootstrap deltas with the reason of any value that is undefined."""
    result = paired_bootstrap(truth, scores_a, scores_b, threshold_a=threshold_a, threshold_b=threshold_b,
                              max_fpr=max_fpr, n_resamples=options.n_resamples, confidence=options.confidence,
                              seed=seed)
    for name, row in result.items():
        missing = [side.upper() for side in ("a", "b") if row[side] is None]
        row["reason"] = f"{' and '.join(missing)}: {METRIC_REASONS[name]}" if missing else None
    if max_fpr is None:
        result["recall_at_fpr"] = {"a": None, "b": None, "delta": None, "ci_low": None, "ci_high": None,
                                   "ci_reason": None, "reason": "needs two score signals"}
    return result


def _mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, Any]:
    m = mcnemar_exact(correct_a, correct_b)
    return {"b": m["a_only"], "c": m["b_only"], "discordant": m["discordant"], "p_value": m["p_value"],
            "both_right": int(np.count_nonzero(correct_a & correct_b)),
            "both_wrong": int(np.count_nonzero(~correct_a & ~correct_b)),
            "accuracy_a": float(correct_a.mean()) if correct_a.size else None,
            "accuracy_b": float(correct_b.mean()) if correct_b.size else None}


def comparison_document(paired: Paired, options: Options, *, flips_shown: int = FLIPS_SHOWN) -> dict[str, Any]:
    """The results document (JSON-safe) of comparing ``paired.b`` with ``paired.a`` on the same
    items. See the module docstring for the conventions. Raises ValueError when there is no item
    or a score is not a finite number in the arrays."""
    truth, n = paired.truth, paired.truth.size
    if n == 0:
        raise ValueError("no gold item was scored by both versions: nothing to compare")
    scores_a, threshold_a, how_a = _binary_scores(paired.a, truth, paired.positive_labels, options)
    scores_b, threshold_b, how_b = _binary_scores(paired.b, truth, paired.positive_labels, options)
    both_scores = paired.a.kind == "score" and paired.b.kind == "score"
    both_labels = paired.a.kind == "label" and paired.b.kind == "label"
    max_fpr = options.max_fpr if options.max_fpr is not None else DEFAULT_MAX_FPR
    binary = _deltas(truth, scores_a, scores_b, threshold_a=threshold_a, threshold_b=threshold_b,
                     max_fpr=max_fpr if both_scores else None, options=options, seed=options.seed)

    predicted_a, predicted_b = scores_a >= threshold_a, scores_b >= threshold_b
    if both_labels:
        assert paired.a.labels is not None and paired.b.labels is not None
        gold = np.asarray(paired.gold, dtype=object)
        said_a, said_b = np.asarray(paired.a.labels, dtype=object), np.asarray(paired.b.labels, dtype=object)
        correctness = "the signal's label is the gold label"
        flipped = flips(gold, said_a, said_b)
    else:
        gold, said_a, said_b = truth, predicted_a, predicted_b
        correctness = f"the binary prediction (score >= threshold) is the gold answer of {paired.positive!r}"
        flipped = flips(truth, predicted_a, predicted_b)
    correct_a, correct_b = gold == said_a, gold == said_b

    per_label: list[dict] | None = None
    if both_labels:
        per_label = []
        for k, label in enumerate(paired.labels):
            truth_k = gold == label
            a_k, b_k = (said_a == label).astype(np.float64), (said_b == label).astype(np.float64)
            if not truth_k.any() and not a_k.any() and not b_k.any():
                continue  # a label nobody used: every value would be 0/0
            per_label.append({"label": label, "support": int(truth_k.sum()),
                              "flagged_a": int(a_k.sum()), "flagged_b": int(b_k.sum()),
                              **_deltas(truth_k, a_k, b_k, threshold_a=1.0, threshold_b=1.0, max_fpr=None,
                                        options=options, seed=options.seed + k + 1)})

    slices = None
    if paired.slices is not None:
        keys = np.asarray(paired.slices, dtype=object)
        slices = []
        for index, key in enumerate(sorted(set(paired.slices))):
            mask = keys == key
            slices.append({"slice": key, "items": int(mask.sum()), "positives": int(truth[mask].sum()),
                           "mcnemar": _mcnemar(correct_a[mask], correct_b[mask]),
                           **_deltas(truth[mask], scores_a[mask], scores_b[mask], threshold_a=threshold_a,
                                     threshold_b=threshold_b, max_fpr=max_fpr if both_scores else None,
                                     options=options, seed=options.seed + index)})
        slices.sort(key=lambda row: (-row["items"], row["slice"]))

    def flip_rows(positions: np.ndarray) -> dict[str, Any]:
        shown = positions[:flips_shown].tolist()
        return {"count": int(positions.size), "shown": len(shown),
                "items": [{"ref": paired.refs[i], "item_id": paired.item_ids[i] if paired.item_ids else None,
                           "gold": paired.gold[i],
                           "a": _said(paired.a, i, predicted_a), "b": _said(paired.b, i, predicted_b)}
                          for i in shown]}

    document = {
        "positive": paired.positive,
        "kinds": {"a": paired.a.kind, "b": paired.b.kind},
        "thresholds": {"a": {**threshold_json(threshold_a), "chosen_by": how_a},
                       "b": {**threshold_json(threshold_b), "chosen_by": how_b}},
        "max_fpr": max_fpr,
        "items": n,
        "positives": int(truth.sum()),
        "correctness": correctness,
        "mcnemar": _mcnemar(correct_a, correct_b),
        "binary": binary,
        "per_label": per_label,
        "per_label_reason": None if both_labels else "per label (one-vs-rest) needs two label signals; "
                                                     "a score signal answers only its score label",
        "slices": slices,
        "flips": {"right_to_wrong": flip_rows(flipped["right_to_wrong"]),
                  "wrong_to_right": flip_rows(flipped["wrong_to_right"])},
    }
    return json_safe(document)


def _said(side: Side, i: int, predicted: np.ndarray) -> dict[str, Any]:
    """What one side said about item ``i``: its label or score and its binary prediction."""
    return {"label": side.labels[i] if side.labels is not None else None,
            "score": float(side.scores[i]) if side.scores is not None and np.isfinite(side.scores[i]) else None,
            "positive": bool(predicted[i])}


def delta_rows(document: dict) -> list[tuple[str, dict]]:
    """The headline deltas of a stored document in the order the CLI and the page show them."""
    positive = document["positive"]
    names = (("precision", "Δprecision"), ("recall", "Δrecall"), ("f1", "ΔF1"),
             ("recall_at_fpr", f"Δrecall@FPR<={document['max_fpr']:g}"))
    return [(f"{positive}: {label}", document["binary"][key]) for key, label in names]


def delta_text(d: dict | None, digits: int = 3) -> str:
    """``+0.031 [-0.004, +0.066] (A 0.712 → B 0.743)`` or ``undefined (reason)``."""
    if not d or d.get("delta") is None:
        return f"undefined ({(d or {}).get('reason') or 'no data'})"
    text = f"{d['delta']:+.{digits}f}"
    text += (f" [{d['ci_low']:+.{digits}f}, {d['ci_high']:+.{digits}f}]" if d.get("ci_low") is not None
             else f" (no CI: {d.get('ci_reason') or 'undefined'})")
    return f"{text} (A {d['a']:.{digits}f} → B {d['b']:.{digits}f})"


def p_text(p: float | None) -> str:
    """A p-value for people: ``0.0123``, ``< 0.0001`` or ``—``."""
    if p is None:
        return "—"
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"


def delta_cell(d: dict | None, digits: int = 3) -> dict[str, Any]:
    """A table cell: ``{"text": "+0.031 [-0.004, +0.066]" or "undefined", "reason", "ab": "A 0.712 → B
    0.743"}``."""
    if not d or d.get("delta") is None:
        return {"text": "undefined", "reason": (d or {}).get("reason") or "no data", "ab": ""}
    text = f"{d['delta']:+.{digits}f}"
    if d.get("ci_low") is not None:
        text += f" [{d['ci_low']:+.{digits}f}, {d['ci_high']:+.{digits}f}]"
    return {"text": text, "reason": d.get("ci_reason") or "", "ab": f"A {d['a']:.{digits}f} → B {d['b']:.{digits}f}"}


__all__ = ["FLIPS_SHOWN", "delta_cell", "p_text", "Paired", "Side", "comparison_document", "delta_rows", "delta_text"]
