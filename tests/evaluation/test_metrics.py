"""evaluation.metrics (pure, no database): JSON-safe thresholds, curve downsampling that keeps the
chosen point, the κ bootstrap, slice keys and error groups."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from evaluation.metrics import (
    CURVE_POINTS,
    MAX_SLICES,
    Inputs,
    Options,
    bootstrap_confusion,
    error_groups,
    evaluation_document,
    json_safe,
    slice_keys,
    threshold_json,
)


def test_infinite_thresholds_and_nans_are_plain_json():
    assert threshold_json(math.inf) == {"value": None, "flags_nothing": True, "note": "+inf: flags nothing"}
    assert threshold_json(0.25) == {"value": 0.25, "flags_nothing": False}
    assert json.dumps(json_safe({"a": [np.float64("nan"), np.inf, np.int64(3), (1.5,)]}), allow_nan=False) == \
        '{"a": [null, null, 3, [1.5]]}'


def test_curves_are_downsampled_and_keep_the_chosen_threshold():
    rng = np.random.default_rng(0)
    truth = rng.uniform(size=5000) < 0.3
    scores = np.round(np.clip(0.3 * truth + rng.uniform(size=5000) * 0.7, 0, 1), 5)
    chosen = float(np.sort(np.unique(scores))[::-1][1234])  # a distinct score an even spread would miss
    doc, predicted = evaluation_document(
        Inputs(gold=["x"] * 5000, truth=truth, kind="score", positive="violating", labels=[], scores=scores),
        Options(threshold=chosen, n_resamples=20))
    roc, pr = doc["scores"]["curves"]["roc"], doc["scores"]["curves"]["pr"]
    assert len(roc["fpr"]) <= CURVE_POINTS + 2 and roc["points"] > 4000
    assert chosen in roc["thresholds"] and chosen in pr["thresholds"]
    assert roc["thresholds"][0] is None  # +inf
    assert (predicted == (scores >= chosen)).all()


def test_the_kappa_bootstrap_brackets_scikit_learns_kappa():
    rng = np.random.default_rng(1)
    gold = rng.integers(0, 3, size=2000)
    pred = np.where(rng.uniform(size=2000) < 0.7, gold, rng.integers(0, 3, size=2000))
    out = bootstrap_confusion(gold, pred, 3, n_resamples=300, seed=4, confidence=0.95)
    low, high, reason = out["kappa"]
    assert reason is None and low < cohen_kappa_score(gold, pred) < high
    assert bootstrap_confusion(gold, pred, 3, n_resamples=300, seed=4, confidence=0.95) == out  # seeded


def test_slice_keys_name_missing_values_and_fold_the_long_tail():
    assert slice_keys(["de", None, "", {"a": 1}, 3]) == ["de", "(missing)", "(missing)", '{"a": 1}', "3"]
    keys = slice_keys([f"k{i}" for i in range(MAX_SLICES + 10)] + ["k0"] * 5)
    assert len(set(keys)) == MAX_SLICES + 1 and "(other)" in keys and keys.count("k0") == 6


@pytest.mark.parametrize("signal_rules", [None, [("R2",), (), ("R1", "R2")]])
def test_error_groups_count_an_item_under_each_of_its_rules(signal_rules):
    truth = np.array([True, True, False])
    predicted = np.array([False, False, True])
    out = error_groups(refs=["a", "b", "c"], truth=truth, predicted=predicted, gold=["insult", "threat", "ok"],
                       signal_labels=None, gold_rule_ids=[("R1",), (), ()], signal_rule_ids=signal_rules)
    fn = {g["rule_id"]: g["count"] for g in out["false_negatives"]["by_rule"]}
    assert fn == ({"R1": 1, "(no rule id)": 1} if signal_rules is None else {"R1": 1, "R2": 1, "(no rule id)": 1})
    assert out["false_positives"]["by_label"] == [{"label": "ok", "count": 1, "examples": ["c"]}]
