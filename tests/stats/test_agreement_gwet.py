"""Issue 14's agreement corrections: Gwet's convention for missing ratings, weighted Cohen's κ."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score

from stats import bootstrap_ci, cohen_kappa, count_table, fleiss_kappa, gwet_ac1, krippendorff_alpha
from stats.agreement import KERNELS

from .test_stats import KRIPPENDORFF_2011, units_from_columns

CATEGORIES = [1, 2, 3, 4, 5]


def test_gwet_irrcac_values_on_krippendorff_2011_data():
    # Gwet's irrCAC, fleiss.kappa.raw and gwet.ac1.raw on Krippendorff's (2011) 4 observers
    # x 12 units (unit 12 has one rating): 0.76117 and 0.77544. Dropping the single-rated unit
    # from the category shares (the old convention) gives 0.76248 and 0.77515.
    units = units_from_columns(KRIPPENDORFF_2011)
    kappa = fleiss_kappa(units, CATEGORIES)
    ac1 = gwet_ac1(units, CATEGORIES)
    assert round(kappa.value, 5) == 0.76117
    assert round(ac1.value, 5) == 0.77544
    assert kappa.units == ac1.units == 11  # pairable units: the ones p_a averages over
    pairable = [unit for unit in units if len(unit) >= 2]
    assert round(fleiss_kappa(pairable, CATEGORIES).value, 5) == 0.76248
    assert round(gwet_ac1(pairable, CATEGORIES).value, 5) == 0.77515


def test_single_ratings_enter_the_shares_but_not_observed_agreement():
    units = units_from_columns(KRIPPENDORFF_2011)
    table = count_table(units, CATEGORIES)
    assert table.units == 11 and table.rated == 12 and table.unpairable == 1
    # percent agreement and α read pairable units only: unchanged by a single rating
    assert krippendorff_alpha(units, "nominal", CATEGORIES).value == pytest.approx(
        krippendorff_alpha([u for u in units if len(u) >= 2], "nominal", CATEGORIES).value)
    # a unit with no rating at all changes nothing
    assert fleiss_kappa(units + [{}], CATEGORIES).value == fleiss_kappa(units, CATEGORIES).value
    # by hand: p_a over 11 units, π_k over 12 (the single rating is a 3)
    counts = np.zeros((12, 5))
    for column in KRIPPENDORFF_2011.values():
        for i, value in enumerate(column):
            if value is not None:
                counts[i, value - 1] += 1
    ratings = counts.sum(axis=1)
    pairable = ratings >= 2
    p_a = ((counts * (counts - 1)).sum(axis=1)[pairable] / (ratings * (ratings - 1))[pairable]).mean()
    pi = (counts / ratings[:, None]).mean(axis=0)
    p_e = (pi**2).sum()
    assert fleiss_kappa(units, CATEGORIES).value == pytest.approx((p_a - p_e) / (1 - p_e), abs=1e-15)


def test_bootstrap_resamples_single_rated_units_for_fleiss_and_ac1():
    rng = np.random.default_rng(5)
    units = [{f"r{r}": int(rng.integers(3)) for r in range(int(rng.integers(1, 4)))} for _ in range(200)]
    for statistic in ("fleiss_kappa", "gwet_ac1"):
        low, high, reason = bootstrap_ci(units, statistic, n_resamples=500, seed=1)
        assert reason is None and low < high
        assert (low, high, reason) == bootstrap_ci(units, statistic, n_resamples=500, seed=1)
    # α's interval ignores single-rated units entirely: same draws with or without them
    pairable = [unit for unit in units if len(unit) >= 2]
    assert bootstrap_ci(units, "krippendorff_alpha", seed=2) == bootstrap_ci(pairable, "krippendorff_alpha", seed=2)


# SAS PROC FREQ (AGREE) on John Uebersax's "Calculating Kappa with SAS", Example 1, table of
# rater1 by rater2 (3 x 3, 19 subjects, pseudo-observations of weight 1e-10 make it square):
# simple kappa 0.4842, weighted kappa (SAS's default Cicchetti-Allison = linear weights) 0.4701.
SAS_RATER1 = [1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3]
SAS_RATER2 = [2, 2, 2, 2, 3, 2, 2, 2, 2, 2, 2, 2, 2, 3, 2, 3, 3, 3, 3]


def test_sas_proc_freq_published_example():
    assert round(cohen_kappa(SAS_RATER1, SAS_RATER2, [1, 2, 3]).value, 4) == 0.4842
    assert round(cohen_kappa(SAS_RATER1, SAS_RATER2, [1, 2, 3], weights="linear").value, 4) == 0.4701
    # without categories rater1's 1 still makes the table 3 x 3 (labels seen by either rater)
    assert round(cohen_kappa(SAS_RATER1, SAS_RATER2, weights="linear").value, 4) == 0.4701
    for weights in (None, "linear", "quadratic"):
        reference = cohen_kappa_score(SAS_RATER1, SAS_RATER2, weights=weights)
        assert cohen_kappa(SAS_RATER1, SAS_RATER2, weights=weights).value == pytest.approx(reference, abs=1e-12)


def test_weights_are_on_the_index_of_the_given_order_not_on_values():
    # mid-high disagreements are adjacent on the scale, 2 apart alphabetically (high, low, mid)
    first = ["low", "low", "mid", "high", "high", "mid", "mid", "high", "low"]
    second = ["low", "mid", "mid", "high", "mid", "high", "high", "high", "low"]
    order = ["low", "mid", "high"]
    ours = cohen_kappa(first, second, order, weights="quadratic").value
    assert ours == pytest.approx(cohen_kappa_score(first, second, labels=order, weights="quadratic"))
    # alphabetical order (high < low < mid) is a different, wrong, ordinal scale
    alphabetical = cohen_kappa(first, second, weights="quadratic").value
    assert alphabetical == pytest.approx(cohen_kappa_score(first, second, weights="quadratic"))
    assert alphabetical != pytest.approx(ours)
    # unweighted κ does not depend on the order
    assert cohen_kappa(first, second, order).value == pytest.approx(cohen_kappa(first, second).value)


def test_bad_weights_and_positional_misuse_are_errors():
    with pytest.raises(ValueError, match="weights: must be"):
        cohen_kappa([1, 2], [2, 1], weights="cubic")
    with pytest.raises(ValueError, match="not a string"):
        cohen_kappa([1, 2], [2, 1], "linear")


def test_weighted_kappa_with_perfect_agreement_and_undefined_cases():
    assert cohen_kappa([1, 2, 3], [1, 2, 3], weights="linear").value == pytest.approx(1.0)
    same = cohen_kappa([2, 2], [2, 2], weights="quadratic")
    assert same.value is None and same.reason


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), q=st.integers(2, 6), weights=st.sampled_from([None, "linear", "quadratic"]))
def test_weighted_kappa_matches_scikit_learn(seed, q, weights):
    rng = np.random.default_rng(seed)
    first = rng.integers(0, q, 60)
    second = np.where(rng.random(60) < 0.5, first, rng.integers(0, q, 60))
    if len(set(first) | set(second)) < 2:
        return
    labels = list(range(q))
    reference = cohen_kappa_score(first, second, labels=labels, weights=weights)
    ours = cohen_kappa(list(first), list(second), labels, weights=weights)
    if not np.isfinite(reference):
        assert ours.value is None
    else:
        assert ours.value == pytest.approx(reference, abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_kernels_equal_the_public_functions_with_missing_ratings(seed):
    rng = np.random.default_rng(seed)
    units = [{f"r{r}": int(rng.integers(3)) for r in range(5) if rng.random() < 0.45} for _ in range(30)]
    table = count_table(units, [0, 1, 2])
    if table.units == 0 or np.count_nonzero(table.patterns.sum(axis=0)) < 2:
        return
    weights = table.multiplicity[None, :].astype(float)
    for name, function in (("fleiss_kappa", fleiss_kappa), ("gwet_ac1", gwet_ac1)):
        value = function(units, [0, 1, 2]).value
        kernel = KERNELS[name](table, weights)[0]
        assert (value is None and not np.isfinite(kernel)) or kernel == pytest.approx(value, abs=1e-12)
