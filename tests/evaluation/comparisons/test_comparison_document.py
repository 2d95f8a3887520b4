"""The pure comparison document (no database): swapping A and B negates every delta and its
interval and swaps McNemar's b and c; a 0/0 is None with the side and reason named."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evaluation.comparison import Paired, Side, comparison_document
from evaluation.metrics import Options


def _paired(a: np.ndarray, b: np.ndarray, truth: np.ndarray) -> Paired:
    gold = ["insult" if t else "not_harassment" for t in truth]
    return Paired(refs=[f"g:{i}" for i in range(truth.size)], gold=gold, truth=truth, positive="violating",
                  positive_labels=frozenset({"insult"}), labels=["not_harassment", "insult"],
                  a=Side("score", scores=a), b=Side("score", scores=b))


def test_swapping_a_and_b_negates_the_deltas():
    rng = np.random.default_rng(4)
    truth = rng.uniform(size=300) < 0.4
    a = np.clip(0.3 * truth + rng.uniform(0, 0.7, 300), 0, 1)
    b = np.clip(a + 0.1 * truth + rng.normal(0, 0.05, 300), 0, 1)
    options = Options(threshold=0.5, max_fpr=0.05, n_resamples=400)
    forward, backward = comparison_document(_paired(a, b, truth), options), \
        comparison_document(_paired(b, a, truth), options)
    json.dumps(forward, allow_nan=False)
    for name in ("precision", "recall", "f1", "recall_at_fpr"):
        f, r = forward["binary"][name], backward["binary"][name]
        assert f["delta"] == pytest.approx(-r["delta"])
        assert (f["ci_low"], f["ci_high"]) == pytest.approx((-r["ci_high"], -r["ci_low"]))
    assert (forward["mcnemar"]["b"], forward["mcnemar"]["c"]) == (backward["mcnemar"]["c"], backward["mcnemar"]["b"])
    assert forward["mcnemar"]["p_value"] == pytest.approx(backward["mcnemar"]["p_value"])
    assert forward["flips"]["right_to_wrong"]["count"] == backward["flips"]["wrong_to_right"]["count"]


def test_zero_over_zero_names_the_side_and_the_reason():
    truth = np.array([False, False, False, True])
    a = np.array([0.1, 0.2, 0.3, 0.4])  # flags nothing at 0.5: A's precision is 0/0
    b = np.array([0.1, 0.2, 0.6, 0.9])
    doc = comparison_document(_paired(a, b, truth), Options(threshold=0.5, n_resamples=50))
    precision = doc["binary"]["precision"]
    assert precision["a"] is None and precision["delta"] is None and precision["ci_low"] is None
    assert precision["reason"] == "A: no item was predicted positive (TP + FP = 0)"
    assert doc["binary"]["recall"]["delta"] == 1.0


def test_nothing_to_compare_is_refused():
    with pytest.raises(ValueError, match="no gold item was scored by both"):
        comparison_document(_paired(np.array([]), np.array([]), np.array([], dtype=bool)), Options())
