"""Agreement statistics against published worked examples and independent implementations."""

import os
import subprocess
import sys
from pathlib import Path

import krippendorff
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss

from stats import (
    accuracy_against_gold,
    agreement_summary,
    bootstrap_ci,
    cohen_kappa,
    count_table,
    fleiss_kappa,
    gwet_ac1,
    krippendorff_alpha,
    pairwise_cohen_kappa,
    per_label_alpha,
    percent_agreement,
)
from stats.agreement import KERNELS

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section E: 4 observers,
# 12 units, values 1-5, missing data. Published: nominal .743, ordinal .815, interval .849, ratio .797.
KRIPPENDORFF_2011 = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
}


def units_from_columns(columns):
    count = len(next(iter(columns.values())))
    return [{rater: values[i] for rater, values in columns.items() if values[i] is not None} for i in range(count)]


def units_from_counts(table):
    """Rows of category counts (Fleiss' layout) → units with anonymous raters."""
    units = []
    for row in table:
        unit, rater = {}, 0
        for category, count in enumerate(row):
            for _ in range(count):
                unit[f"r{rater}"] = category
                rater += 1
        units.append(unit)
    return units


@pytest.mark.parametrize(("level", "published"), [
    ("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)])
def test_krippendorff_2011_worked_example(level, published):
    units = units_from_columns(KRIPPENDORFF_2011)
    estimate = krippendorff_alpha(units, level, categories=[1, 2, 3, 4, 5])
    assert round(estimate.value, 3) == published
    assert estimate.units == 11  # unit 12 has a single value: unpairable
    table = count_table(units, [1, 2, 3, 4, 5])
    kernel = KERNELS["krippendorff_alpha"](table, table.multiplicity[None, :].astype(float), level=level)[0]
    assert kernel == pytest.approx(estimate.value, abs=1e-12)


# Fleiss (1971) as reproduced on Wikipedia: 10 subjects, 14 raters, 5 categories; P̄ = .378, κ = .210.
FLEISS_EXAMPLE = [
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
]


def test_fleiss_worked_example():
    units = units_from_counts(FLEISS_EXAMPLE)
    assert round(fleiss_kappa(units).value, 3) == 0.210
    assert round(percent_agreement(units).value, 3) == 0.378


# Gwet's irrCAC overview, dataset cont3x3abstractors (100 pregnancies, 2 abstractors):
# Cohen .7964094, Scott's π (= Fleiss for two raters) .7962397, AC1 .8493305, agreement .89.
ABSTRACTORS = [[13, 0, 0], [0, 20, 7], [0, 4, 56]]


def abstractor_units():
    categories = ["ectopic", "aiu", "niu"]
    units = []
    for i, row in enumerate(ABSTRACTORS):
        for j, count in enumerate(row):
            units += [{"A": categories[i], "B": categories[j]}] * count
    return units, categories


def test_gwet_irrcac_worked_example():
    units, categories = abstractor_units()
    assert gwet_ac1(units, categories).value == pytest.approx(0.8493305, abs=1e-7)
    assert fleiss_kappa(units, categories).value == pytest.approx(0.7962397, abs=1e-7)
    assert percent_agreement(units, categories).value == pytest.approx(0.89)
    first, second = [u["A"] for u in units], [u["B"] for u in units]
    assert cohen_kappa(first, second, categories).value == pytest.approx(0.7964094, abs=1e-7)


def test_gwet_ac1_counts_unused_categories():
    units, categories = abstractor_units()
    assert gwet_ac1(units, categories + ["unused"]).value != pytest.approx(gwet_ac1(units, categories).value)


def test_undefined_statistics_are_null_with_a_reason():
    same = [{"a": "x", "b": "x"}] * 5
    for estimate in (fleiss_kappa(same), krippendorff_alpha(same), cohen_kappa(["x"] * 3, ["x"] * 3)):
        assert estimate.value is None and estimate.reason
    lonely = [{"a": "x"}, {"b": "y"}]
    assert percent_agreement(lonely).value is None
    assert "two or more" in gwet_ac1(lonely).reason
    assert bootstrap_ci(same, "krippendorff_alpha")[:2] == (None, None)
    assert per_label_alpha(same)["x"].value is None


def test_label_outside_categories_is_an_error():
    with pytest.raises(ValueError, match="'maybe' is not a category"):
        count_table([{"a": "yes", "b": "maybe"}], ["yes", "no"])


def random_units(rng, n_units, raters=6, categories=4, missing=0.4):
    units = []
    for _ in range(n_units):
        unit = {f"r{r}": int(rng.integers(categories)) for r in range(raters) if rng.random() > missing}
        # correlate raters a little so statistics are away from zero
        if unit and rng.random() < 0.5:
            value = next(iter(unit.values()))
            unit = {k: value for k in unit}
        units.append(unit)
    return units


def as_reliability_matrix(units, raters=6):
    matrix = np.full((raters, len(units)), np.nan)
    for j, unit in enumerate(units):
        for rater, value in unit.items():
            matrix[int(rater[1:]), j] = value
    return matrix


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n_units=st.integers(3, 60))
def test_alpha_matches_the_krippendorff_package_on_random_data(seed, n_units):
    rng = np.random.default_rng(seed)
    units = random_units(rng, n_units)
    table = count_table(units, [0, 1, 2, 3])
    if table.units < 2 or np.count_nonzero(table.pairable_only().patterns.sum(axis=0)) < 2:
        return
    for level in ("nominal", "ordinal", "interval"):
        reference = krippendorff.alpha(
            reliability_data=as_reliability_matrix(units), value_domain=[0, 1, 2, 3], level_of_measurement=level)
        ours = KERNELS["krippendorff_alpha"](table, table.multiplicity[None, :].astype(float), level=level)[0]
        assert ours == pytest.approx(reference, abs=1e-9)
        assert krippendorff_alpha(units, level, [0, 1, 2, 3]).value == pytest.approx(reference, abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), raters=st.integers(2, 7))
def test_fleiss_kernel_matches_statsmodels_with_equal_raters(seed, raters):
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(raters, rng.dirichlet([1, 1, 1]), size=40)
    if np.count_nonzero(counts.sum(axis=0)) < 2:
        return
    reference = statsmodels_fleiss(counts)
    table = count_table(units_from_counts(counts), [0, 1, 2])
    assert KERNELS["fleiss_kappa"](table, table.multiplicity[None, :].astype(float))[0] == pytest.approx(reference)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_cohen_matches_scikit_learn_and_two_rater_ac1_is_symmetric(seed):
    rng = np.random.default_rng(seed)
    first = list(rng.integers(0, 3, 50))
    second = [a if rng.random() < 0.6 else int(rng.integers(0, 3)) for a in first]
    assert cohen_kappa(first, second).value == pytest.approx(cohen_kappa_score(first, second))
    forward = [{"a": x, "b": y} for x, y in zip(first, second, strict=True)]
    backward = [{"a": y, "b": x} for x, y in zip(first, second, strict=True)]
    assert gwet_ac1(forward).value == pytest.approx(gwet_ac1(backward).value)


def test_bootstrap_matches_index_resampling_and_covers_the_estimate():
    rng = np.random.default_rng(7)
    units = random_units(rng, 300)
    low, high, reason = bootstrap_ci(units, "krippendorff_alpha", n_resamples=2000, seed=3)
    point = krippendorff_alpha(units).value
    assert reason is None and low < point < high
    # the same interval by brute force: resample unit indices, recompute with the package
    draws = []
    idx_rng = np.random.default_rng(11)
    matrix = as_reliability_matrix(units)
    for _ in range(400):
        idx = idx_rng.integers(0, len(units), len(units))
        draws.append(krippendorff.alpha(reliability_data=matrix[:, idx], level_of_measurement="nominal"))
    ref_low, ref_high = np.percentile(draws, [2.5, 97.5])
    assert low == pytest.approx(ref_low, abs=0.03) and high == pytest.approx(ref_high, abs=0.03)
    assert bootstrap_ci(units, "gwet_ac1", seed=3) == bootstrap_ci(units, "gwet_ac1", seed=3)


def test_pairwise_kappa_needs_enough_shared_units_and_accuracy_against_gold():
    units = [{"ann1": i % 2, "ann2": i % 2, "ann3": (i // 2) % 2} for i in range(30)]
    units += [{"ann1": 0, "ann4": 1}] * 5
    pairs = {(row["a"], row["b"]): row for row in pairwise_cohen_kappa(units)}
    assert set(pairs) == {("ann1", "ann2"), ("ann1", "ann3"), ("ann2", "ann3")}
    assert pairs[("ann1", "ann2")]["kappa"].value == pytest.approx(1.0)
    gold = {i: i % 2 for i in range(30)}
    ratings = [(labeler, i, label) for i, unit in enumerate(units[:30]) for labeler, label in unit.items()]
    scores = accuracy_against_gold(ratings, gold)
    assert scores["ann1"]["accuracy"] == 1.0 and scores["ann3"]["items"] == 30
    assert scores["ann3"]["accuracy"] == pytest.approx(0.5)


def test_summary_is_json_ready_on_100k_units():
    import json

    rng = np.random.default_rng(1)
    labels = ["a", "b", "c", "d", "e"]
    truth = rng.integers(0, 5, 100_000)
    units = [{f"l{(i + k) % 40}": labels[t if rng.random() < 0.8 else rng.integers(0, 5)] for k in range(3)}
             for i, t in enumerate(truth)]
    summary = agreement_summary(units, labels, ordered=True)
    json.dumps(summary)
    alpha = summary["krippendorff_alpha"]
    assert alpha["ci_low"] < alpha["value"] < alpha["ci_high"]
    assert summary["krippendorff_alpha_ordinal"]["value"] is not None
    assert len(summary["pairwise_cohen_kappa"]) == 80  # 40 labelers in a ring, 3 per unit


def test_stats_and_simulator_import_without_django_or_settings():
    code = ("import sys, stats, simulator, simulator.server; "
            "assert not [m for m in sys.modules if m == 'django' or m.startswith('django.')], 'django imported'")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=Path(__file__).resolve().parents[2])
