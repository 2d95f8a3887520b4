"""Bootstrap intervals over items, paired comparisons and calibration (issue 14)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, brier_score_loss, f1_score, roc_auc_score
from statsmodels.stats.contingency_tables import mcnemar

from stats.calibration import brier_score, expected_calibration_error, reliability_diagram
from stats.comparison import flips, mcnemar_exact, paired_bootstrap
from stats.evaluation import binary_metrics, recall_at_fpr, threshold_for_precision
from stats.evaluation_ci import bootstrap_per_label, bootstrap_score_metrics, resample_indices, slice_metrics


def scored(seed, n=600, shift=0.25):
    rng = np.random.default_rng(seed)
    truth = rng.random(n) < 0.3
    return truth, np.clip(rng.normal(0.45 + shift * truth, 0.2), 0, 1)


def test_point_values_equal_the_point_functions_and_intervals_cover_them():
    truth, scores = scored(1)
    result = bootstrap_score_metrics(truth, scores, threshold=0.55, max_fpr=0.05, target_precision=0.7,
                                     n_resamples=400, seed=4)
    point = binary_metrics(truth, scores, 0.55)
    assert result["f1"]["value"] == pytest.approx(point["f1"])
    assert result["roc_auc"]["value"] == pytest.approx(roc_auc_score(truth, scores))
    assert result["average_precision"]["value"] == pytest.approx(average_precision_score(truth, scores))
    assert result["recall_at_fpr"]["value"] == pytest.approx(recall_at_fpr(truth, scores, 0.05)["recall"])
    assert result["threshold_at_precision"]["value"] == threshold_for_precision(truth, scores, 0.7)["threshold"]
    for name, row in result.items():
        assert row["ci_reason"] is None, name
        assert row["ci_low"] <= row["value"] <= row["ci_high"], name


def test_bootstrap_equals_brute_force_index_resampling_with_scikit_learn():
    truth, scores = scored(2, n=300)
    ours = bootstrap_score_metrics(truth, scores, threshold=0.5, n_resamples=200, seed=9)
    # the same draws, recomputed one resample at a time by scikit-learn
    drawn = np.concatenate(list(resample_indices(truth.size, n_resamples=200, seed=9)))
    f1 = [f1_score(truth[row], scores[row] >= 0.5) for row in drawn]
    auc = [roc_auc_score(truth[row], scores[row]) for row in drawn]
    ap = [average_precision_score(truth[row], scores[row]) for row in drawn]
    for name, draws in (("f1", f1), ("roc_auc", auc), ("average_precision", ap)):
        low, high = np.percentile(draws, [2.5, 97.5])
        assert (ours[name]["ci_low"], ours[name]["ci_high"]) == (pytest.approx(low, abs=1e-12),
                                                                 pytest.approx(high, abs=1e-12))


def test_deterministic_given_a_seed_and_seed_matters():
    truth, scores = scored(3)
    first = bootstrap_score_metrics(truth, scores, threshold=0.5, n_resamples=100, seed=1)
    assert first == bootstrap_score_metrics(truth, scores, threshold=0.5, n_resamples=100, seed=1)
    assert first != bootstrap_score_metrics(truth, scores, threshold=0.5, n_resamples=100, seed=2)


def test_undefined_in_too_many_resamples_is_none_with_a_reason():
    truth = np.array([True] + [False] * 59)  # one positive: most resamples have none or all
    scores = np.linspace(0, 1, 60)
    result = bootstrap_score_metrics(truth, scores, threshold=0.5, n_resamples=200, seed=0)
    assert result["roc_auc"]["value"] is not None
    assert result["roc_auc"]["ci_low"] is None and "undefined in" in result["roc_auc"]["ci_reason"]
    only_negatives = bootstrap_score_metrics([False] * 10, np.linspace(0, 1, 10), n_resamples=50)
    assert only_negatives["roc_auc"] == {"value": None, "ci_low": None, "ci_high": None,
                                         "ci_reason": "undefined in 50 of 50 resamples"}


def test_stratified_resampling_keeps_slice_sizes():
    strata = ["fr"] * 30 + ["de"] * 70
    for drawn in resample_indices(100, n_resamples=20, seed=0, groups=[np.arange(30, 100), np.arange(30)]):
        assert (drawn[:, :70] >= 30).all() and (drawn[:, 70:] < 30).all()
    truth, scores = scored(5, n=100)
    slices = slice_metrics(truth, scores, strata, threshold=0.5, max_fpr=0.1, n_resamples=200, seed=3)
    assert set(slices) == {"de", "fr"} and slices["fr"]["items"] == 30
    fr = np.array(strata) == "fr"
    assert slices["fr"]["f1"]["value"] == pytest.approx(binary_metrics(truth[fr], scores[fr], 0.5)["f1"])
    overall = bootstrap_score_metrics(truth, scores, threshold=0.5, strata=strata, n_resamples=200, seed=3)
    assert overall["f1"]["value"] == pytest.approx(binary_metrics(truth, scores, 0.5)["f1"])


def test_per_label_bootstrap():
    rng = np.random.default_rng(0)
    gold = rng.choice(["ok", "insult", "threat"], 500)
    predicted = np.where(rng.random(500) < 0.7, gold, rng.choice(["ok", "insult", "threat"], 500))
    intervals = bootstrap_per_label(gold, predicted, ["ok", "insult", "threat"], n_resamples=300, seed=1)
    for label in ("ok", "insult", "threat"):
        f1 = f1_score(gold, predicted, labels=[label], average="macro")
        low, high, reason = intervals[label]["f1"]
        assert reason is None and low < f1 < high


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 80))
def test_mcnemar_exact_matches_statsmodels(seed, n):
    rng = np.random.default_rng(seed)
    a = rng.random(n) < 0.7
    b = rng.random(n) < rng.uniform(0.4, 0.9)
    ours = mcnemar_exact(a, b)
    table = [[np.count_nonzero(a & b), np.count_nonzero(a & ~b)], [np.count_nonzero(~a & b), np.count_nonzero(~a & ~b)]]
    reference = mcnemar(table, exact=True)
    assert ours["p_value"] == pytest.approx(reference.pvalue, abs=1e-12)
    assert (ours["a_only"], ours["b_only"]) == (table[0][1], table[1][0])


def test_mcnemar_known_value_and_flips():
    # 10 discordant, split 8/2: p = 2 * P(X <= 2 | 10, 1/2) = 2 * 56/1024
    result = mcnemar_exact([True] * 8 + [False] * 2, [False] * 8 + [True] * 2)
    assert result["p_value"] == pytest.approx(112 / 1024) and result["discordant"] == 10
    assert mcnemar_exact([True, False], [True, False])["p_value"] == 1.0
    changed = flips(["a", "b", "c"], ["a", "x", "c"], ["y", "b", "c"])
    assert changed["right_to_wrong"].tolist() == [0] and changed["wrong_to_right"].tolist() == [1]


def test_paired_bootstrap_uses_the_same_items_for_both_signals():
    truth, old = scored(7, n=500, shift=0.15)
    rng = np.random.default_rng(8)
    new = np.clip(old + 0.15 * truth + rng.normal(0, 0.02, 500), 0, 1)  # better on positives
    result = paired_bootstrap(truth, old, new, threshold_a=0.5, threshold_b=0.5, max_fpr=0.1, n_resamples=300, seed=2)
    recall = result["recall"]
    assert recall["delta"] == pytest.approx(binary_metrics(truth, new, 0.5)["recall"]
                                            - binary_metrics(truth, old, 0.5)["recall"])
    assert 0 < recall["ci_low"] <= recall["delta"] <= recall["ci_high"]
    # identical signals: every paired difference is exactly 0 (unpaired resampling would not be)
    same = paired_bootstrap(truth, old, old, threshold_a=0.5, threshold_b=0.5, n_resamples=100, seed=2)
    assert (same["f1"]["ci_low"], same["f1"]["ci_high"]) == (0.0, 0.0)
    assert set(same) == {"precision", "recall", "f1"}


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n_bins=st.integers(2, 15), strategy=st.sampled_from(["uniform", "quantile"]))
def test_calibration_matches_scikit_learn(seed, n_bins, strategy):
    rng = np.random.default_rng(seed)
    probabilities = rng.beta(2, 3, 300)
    truth = rng.random(300) < probabilities ** 0.8
    rows = [row for row in reliability_diagram(truth, probabilities, n_bins, strategy) if row["count"]]
    observed, predicted = calibration_curve(truth, probabilities, n_bins=n_bins, strategy=strategy)
    np.testing.assert_allclose([row["observed_rate"] for row in rows], observed)
    np.testing.assert_allclose([row["mean_probability"] for row in rows], predicted)
    counts = np.array([row["count"] for row in rows])
    ece = float((counts / 300 * np.abs(observed - predicted)).sum())
    assert expected_calibration_error(truth, probabilities, n_bins, strategy) == pytest.approx(ece)
    assert brier_score(truth, probabilities) == pytest.approx(brier_score_loss(truth, probabilities))


def test_calibration_conventions():
    perfect = expected_calibration_error([True, False, True, False], [1.0, 0.0, 1.0, 0.0], 5)
    assert perfect == 0.0
    rows = reliability_diagram([True, False], [0.05, 0.1], n_bins=10)
    assert rows[0]["count"] == 2 and rows[5]["count"] == 0 and rows[5]["observed_rate"] is None
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        brier_score([True], [1.2])
