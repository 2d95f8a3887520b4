"""Prevalence estimators against worked examples, ppi-python, a brute-force reference, and bad input."""

import math

import numpy as np
import ppi_py
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stats.prevalence import (
    hajek_mean,
    hajek_mean_ci,
    horvitz_thompson,
    ppi_lambda_batch,
    ppi_mean,
    ppi_mean_batch,
    stratified_ppi_mean,
    stratified_prevalence,
    wilson_interval,
)

Z95 = 1.959963984540054

# --- design-based: worked examples ---------------------------------------------------------------

# Hand-worked HT example: y = (1, 0, 1, 0), π = (1/2, 1/4, 1/10, 1), N = 20.
#   y/π = (2, 0, 10, 0): T̂ = 12, mean = 12/20 = 0.6.
#   The last unit is a certainty unit (π = 1) and leaves the variance; the other three, with
#   z = (2, 0, 10), mean 4: v(T̂) = 3/2 · ((2−4)² + (0−4)² + (10−4)²) = 3/2 · 56 = 84.
#   Hájek: N̂ = 2 + 4 + 10 + 1 = 17, ȳ = 12/17; e_i = (y_i − ȳ)/π_i/N̂ = (10, −48, 50)/289 for
#   the random units, mean 4/289, deviations (6, −52, 46)/289: v = 3/2 · 4856/289² = 7284/289².
HT_Y = [1, 0, 1, 0]
HT_PI = [0.5, 0.25, 0.1, 1.0]


def test_horvitz_thompson_hand_worked_example():
    result = horvitz_thompson(HT_Y, HT_PI, N=20)
    assert result["total"] == pytest.approx(12)
    assert result["mean"] == pytest.approx(0.6)
    assert result["se_total"] == pytest.approx(math.sqrt(84))
    assert result["se_mean"] == pytest.approx(math.sqrt(84) / 20)
    assert result["ci_mean"] == pytest.approx((0.6 - Z95 * math.sqrt(84) / 20, 0.6 + Z95 * math.sqrt(84) / 20))
    assert (result["n"], result["N"]) == (4, 20)


def test_hajek_hand_worked_example_and_ht_without_n():
    assert hajek_mean(HT_Y, HT_PI) == pytest.approx(12 / 17)
    result = hajek_mean_ci(HT_Y, HT_PI)
    assert result["estimate"] == pytest.approx(12 / 17)
    assert result["se"] == pytest.approx(math.sqrt(7284) / 289)
    lo, hi = result["ci_wilson"]
    assert 0 <= lo < 12 / 17 < hi <= 1
    # Without N, the HT mean divides by N̂ = Σ 1/π: the Hájek mean with its SE.
    ht = horvitz_thompson(HT_Y, HT_PI)
    assert ht["N"] == pytest.approx(17)
    assert ht["mean"] == pytest.approx(12 / 17)
    assert ht["se_mean"] == pytest.approx(math.sqrt(7284) / 289)


def test_certainty_units_add_no_variance_and_one_random_unit_has_no_se():
    census = horvitz_thompson([1, 0, 1], [1, 1, 1], N=3)
    assert census["mean"] == pytest.approx(2 / 3)
    assert census["se_mean"] == 0
    lonely = horvitz_thompson([1, 0, 1], [1, 1, 0.5], N=4)
    assert lonely["total"] == pytest.approx(3)
    assert lonely["se_total"] is None and lonely["ci_mean"] is None


def test_equal_probabilities_reduce_to_the_sample_mean_with_replacement_variance():
    y = np.array([1, 0, 0, 1, 0, 0, 0, 1, 0, 0], dtype=float)
    result = horvitz_thompson(y, np.full(10, 10 / 1000), N=1000)
    assert result["mean"] == pytest.approx(y.mean())
    assert result["se_mean"] == pytest.approx(y.std(ddof=1) / math.sqrt(10))
    assert hajek_mean_ci(y, np.full(10, 0.01))["se"] == pytest.approx(y.std(ddof=1) / math.sqrt(10))


# Scheaffer, Mendenhall, Ott & Gerow, "Elementary Survey Sampling" (7th ed.), Example 5.12: households
# viewing a TV show, strata town A, town B, rural: N_h = (155, 62, 93), n_h = (20, 8, 12),
# p_h = (0.80, 0.25, 0.50). Published: p̂_st = 0.60 with bound 2·SE ≈ 0.13; the estimator and
# variance are Cochran's (1977) eqs. 5.47-5.48 with s_h² = n_h p_h q_h/(n_h − 1).
# Hand check: Σ N_h² (1 − n_h/N_h) p_h q_h/(n_h − 1) = 176.21 + 89.68 + 171.20 = 437.09, / 310².
TV_STRATA = [{"N_h": 155, "n_h": 20, "y_h": 16}, {"N_h": 62, "n_h": 8, "y_h": 2}, {"N_h": 93, "n_h": 12, "y_h": 6}]


def test_stratified_prevalence_textbook_example():
    result = stratified_prevalence(TV_STRATA)
    assert result["estimate"] == pytest.approx(0.60)
    assert result["se"] == pytest.approx(0.06744, abs=5e-5)
    assert 2 * result["se"] == pytest.approx(0.13, abs=0.01)
    assert result["ci"] == pytest.approx((0.6 - Z95 * result["se"], 0.6 + Z95 * result["se"]))
    assert (result["n"], result["N"]) == (40, 310)


def test_stratified_prevalence_fpc_and_census_stratum():
    without_fpc = stratified_prevalence(TV_STRATA, fpc=False)
    # Every stratum samples 20/155 = 8/62 = 12/93: dropping the fpc divides the variance by 1 − 4/31.
    assert without_fpc["se"] ** 2 == pytest.approx(stratified_prevalence(TV_STRATA)["se"] ** 2 / (1 - 4 / 31))
    census = [*TV_STRATA, {"N_h": 10, "n_h": 10, "y_h": 3}]
    result = stratified_prevalence(census)
    weights = np.array([155, 62, 93, 10]) / 320
    assert result["estimate"] == pytest.approx(weights @ [0.8, 0.25, 0.5, 0.3])
    # The census stratum adds nothing: the variance is the three sampled strata's with the new weights.
    expected = sum(
        (N / 320) ** 2 * (1 - n / N) * (y / n) * (1 - y / n) / (n - 1)
        for N, n, y in ((155, 20, 16), (62, 8, 2), (93, 12, 6))
    )
    assert result["se"] ** 2 == pytest.approx(expected)
    assert stratified_prevalence(census, fpc=False)["se"] > result["se"]
    assert stratified_prevalence([{"N_h": 1, "n_h": 1, "y_h": 1}])["se"] == 0


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 400), st.data())
def test_one_stratum_is_simple_random_sampling(n, data):
    N = data.draw(st.integers(n, 5000))
    y = data.draw(st.integers(0, n))
    result = stratified_prevalence([{"N_h": N, "n_h": n, "y_h": y}])
    p = y / n
    assert result["estimate"] == pytest.approx(p)
    assert result["se"] == pytest.approx(math.sqrt((1 - n / N) * p * (1 - p) / (n - 1)), abs=1e-15)
    lo, hi = result["ci_wilson"]
    assert 0 <= lo <= p <= hi <= 1


def test_wilson_interval_at_zero_and_against_the_textbook_formula():
    # No violation among 400: Wald is the point 0, Wilson is [0, z²/(n + z²)].
    assert wilson_interval(0.0, 0.0, 400) == pytest.approx((0.0, Z95**2 / (400 + Z95**2)))
    # With the simple-random-sampling SE, n* = n: the usual Wilson interval (statsmodels' proportion_confint).
    from statsmodels.stats.proportion import proportion_confint

    p, n = 7 / 300, 300
    expected = proportion_confint(7, 300, alpha=0.05, method="wilson")
    assert wilson_interval(p, math.sqrt(p * (1 - p) / n), n) == pytest.approx(expected)


# --- design-based: bad input -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "probs", "message"),
    [
        ([1, 0], [0.5, 0.0], r"probs: inclusion probabilities must be in \(0, 1\]"),
        ([1, 0], [0.5, 1.5], r"position 1 is 1.5"),
        ([1, 0], [-0.1, 0.5], r"in \(0, 1\]"),
        ([1, 0, 1], [0.5, 0.5], "unequal lengths"),
        ([], [], "values: empty input"),
        ([1, float("nan")], [0.5, 0.5], "NaN"),
    ],
)
def test_design_based_raises(values, probs, message):
    for function in (horvitz_thompson, hajek_mean, hajek_mean_ci):
        with pytest.raises(ValueError, match=message):
            function(values, probs)


@pytest.mark.parametrize(
    ("strata", "message"),
    [
        ([], "strata: empty input"),
        ([{"N_h": 10, "n_h": 5, "y_h": 6}], r"y_h \(6\) must be between 0 and n_h \(5\)"),
        ([{"N_h": 10, "n_h": 5, "y_h": -1}], "y_h"),
        ([{"N_h": 10, "n_h": 11, "y_h": 1}], r"n_h \(11\) exceeds N_h \(10\)"),
        ([{"N_h": 10, "n_h": 1, "y_h": 0}], "n_h must be at least 2"),
        ([{"N_h": 0, "n_h": 0, "y_h": 0}], "N_h must be at least 1"),
        ([{"N_h": 10, "n_h": 5}], "missing 'y_h'"),
        ([{"N_h": 10, "n_h": 5.5, "y_h": 1}], "whole number"),
    ],
)
def test_stratified_prevalence_raises(strata, message):
    with pytest.raises(ValueError, match=message):
        stratified_prevalence(strata)


def test_alpha_and_n_raise():
    with pytest.raises(ValueError, match="alpha"):
        horvitz_thompson([1], [0.5], alpha=1.5)
    with pytest.raises(ValueError, match="N: the population size"):
        horvitz_thompson([1], [0.5], N=0)


# --- prediction-powered inference against ppi-python ------------------------------------------------


def _audit(seed: int, n: int = 300, m: int = 3000, prevalence: float = 0.1, agreement: float = 0.85):
    rng = np.random.default_rng(seed)
    truth = (rng.random(n + m) < prevalence).astype(float)
    llm = np.where(rng.random(n + m) < agreement, truth, 1 - truth)
    return truth[:n], llm[:n], llm[n:], rng


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("weighted", [False, True])
def test_ppi_mean_matches_ppi_python(seed, weighted):
    y, yhat, unlabeled, rng = _audit(seed)
    w = rng.uniform(1, 20, y.size) if weighted else None
    w_unlabeled = rng.uniform(1, 20, unlabeled.size) if weighted else None
    for power_tuning, lam in ((False, 1), (True, None)):
        result = ppi_mean(y, yhat, unlabeled, 0.1, power_tuning, w=w, w_unlabeled=w_unlabeled, variance="ppi-python")
        options = {"lam": lam, "w": w, "w_unlabeled": w_unlabeled}
        low, high = ppi_py.ppi_mean_ci(y, yhat, unlabeled, alpha=0.1, **options)
        point = ppi_py.ppi_mean_pointestimate(y, yhat, unlabeled, **options)
        assert result["ci"] == pytest.approx((low[0], high[0]), rel=1e-12, abs=1e-15)
        assert result["estimate"] == pytest.approx(point[0], rel=1e-12)
        assert (result["lam"] == 1) if not power_tuning else (0 <= result["lam"] <= 1)
        classical = ppi_py.classical_mean_ci(y, w=w, alpha=0.1)
        assert result["classical"]["ci"] == pytest.approx((classical[0], classical[1]), rel=1e-12)
        # The vectorised kernel the coverage test uses is the same computation.
        kernel = ppi_mean_batch(
            y[None], yhat[None], unlabeled[None], result["lam"], None if w is None else w[None],
            None if w_unlabeled is None else w_unlabeled[None], variance="ppi-python",
        )  # fmt: skip
        assert kernel["estimate"][0] == pytest.approx(result["estimate"], rel=1e-12)
        assert kernel["se"][0] == pytest.approx(result["se"], rel=1e-9)
        assert result["n_eff"] == pytest.approx(y.size * result["classical"]["se"] ** 2 / result["se"] ** 2)


def _linearised_reference(x, w):
    """Variance of the Hájek mean Σ w x / Σ w by linearisation, written out: (1/n) mean((w̃ (x − x̄_w))²)."""
    n = len(x)
    w_tilde = [wi * n / sum(w) for wi in w]
    mean = sum(wi * xi for wi, xi in zip(w_tilde, x, strict=True)) / n
    return sum((wi * (xi - mean)) ** 2 for wi, xi in zip(w_tilde, x, strict=True)) / n / n


@pytest.mark.parametrize("power_tuning", [False, True])
def test_ppi_mean_weighted_default_is_the_linearised_variance(power_tuning):
    y, yhat, unlabeled, rng = _audit(8)
    w, w_unlabeled = rng.uniform(1, 20, y.size), rng.uniform(1, 20, unlabeled.size)
    result = ppi_mean(y, yhat, unlabeled, 0.05, power_tuning, w=w, w_unlabeled=w_unlabeled)
    reference = ppi_mean(y, yhat, unlabeled, 0.05, power_tuning, w=w, w_unlabeled=w_unlabeled, variance="ppi-python")
    lam = result["lam"]
    assert lam == reference["lam"]
    assert result["estimate"] == pytest.approx(reference["estimate"], rel=1e-12)
    expected = _linearised_reference(list(y - lam * yhat), list(w)) + _linearised_reference(
        list(lam * unlabeled), list(w_unlabeled)
    )
    assert result["se"] == pytest.approx(math.sqrt(expected), rel=1e-9)
    assert result["ci"] == pytest.approx(
        (result["estimate"] - Z95 * result["se"], result["estimate"] + Z95 * result["se"])
    )
    classical = math.sqrt(_linearised_reference(list(y), list(w)))
    assert result["classical"]["se"] == pytest.approx(classical, rel=1e-9)
    assert result["classical"]["estimate"] == pytest.approx(np.sum(w * y) / np.sum(w))
    # Equal weights: the linearised variance is ppi-python's.
    equal = ppi_mean(
        y, yhat, unlabeled, 0.05, power_tuning, w=np.full(y.size, 3.0), w_unlabeled=np.full(unlabeled.size, 3.0)
    )
    plain = ppi_py.ppi_mean_ci(y, yhat, unlabeled, alpha=0.05, lam=None if power_tuning else 1)
    assert equal["ci"] == pytest.approx((plain[0][0], plain[1][0]), rel=1e-12)
    with pytest.raises(ValueError, match="variance: must be one of"):
        ppi_mean(y, yhat, unlabeled, variance="exact")


def test_ppi_plus_plus_is_at_least_as_precise_and_beats_classical_with_a_good_llm():
    y, yhat, unlabeled, _ = _audit(3, agreement=0.97)
    classic, tuned = ppi_mean(y, yhat, unlabeled), ppi_mean(y, yhat, unlabeled, power_tuning=True)
    assert tuned["se"] < tuned["classical"]["se"]
    assert tuned["n_eff"] > 2 * y.size
    assert tuned["se"] <= classic["se"] * 1.01
    # A useless LLM (labels independent of the truth): λ near 0, PPI++ ≈ classical, PPI (λ = 1) worse.
    rng = np.random.default_rng(4)
    noise, noise_unlabeled = rng.random(y.size) < 0.5, rng.random(unlabeled.size) < 0.5
    useless = ppi_mean(y, noise, noise_unlabeled, power_tuning=True)
    assert useless["lam"] < 0.2
    assert useless["se"] <= useless["classical"]["se"] * 1.02
    assert ppi_mean(y, noise, noise_unlabeled)["se"] > useless["se"]


def test_constant_llm_labels_give_lambda_zero_where_ppi_python_gives_nan():
    y = np.array([0, 1, 0, 0, 1, 0, 0, 0], dtype=float)  # mean 1/4: ppi-python's λ is exactly 0/0
    zeros, zeros_unlabeled = np.zeros(8), np.zeros(20)
    with np.errstate(invalid="ignore"):
        assert np.isnan(ppi_py.ppi_mean_ci(y, zeros, zeros_unlabeled, alpha=0.05)[0][0])
    result = ppi_mean(y, zeros, zeros_unlabeled, power_tuning=True)
    assert result["lam"] == 0
    assert result["estimate"] == pytest.approx(y.mean())
    assert result["ci"] == pytest.approx(result["classical"]["ci"])


def test_ppi_lambda_matches_ppi_python_internal_formula():
    y, yhat, unlabeled, _ = _audit(5)
    grads, grads_hat = y - y.mean(), yhat - yhat.mean()
    expected = ppi_py.ppi._calc_lam_glm(grads, grads_hat, unlabeled - yhat.mean(), np.eye(1), clip=True)
    assert float(ppi_lambda_batch(y, yhat, unlabeled)) == pytest.approx(expected, rel=1e-12)


def test_importing_ppi_python_through_the_module_keeps_warnings_on():
    import warnings

    from stats.prevalence import _ppi_py

    _ppi_py()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        warnings.warn("still audible", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["still audible"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (([1, 0], [1], [0, 1]), "unequal lengths"),
        (([1], [1], [0, 1]), "at least two human labels"),
        (([], [], [0, 1]), "y: empty input"),
        (([1, 0], [1, 0], []), "yhat_unlabeled: empty input"),
    ],
)
def test_ppi_mean_raises(arguments, message):
    with pytest.raises(ValueError, match=message):
        ppi_mean(*arguments)


def test_ppi_mean_raises_on_bad_weights_and_alpha():
    with pytest.raises(ValueError, match="w: weights must be positive"):
        ppi_mean([1, 0], [1, 0], [0, 1], w=[1, 0])
    with pytest.raises(ValueError, match="w_unlabeled: length 1, expected 2"):
        ppi_mean([1, 0], [1, 0], [0, 1], w_unlabeled=[1])
    with pytest.raises(ValueError, match="alpha"):
        ppi_mean([1, 0], [1, 0], [0, 1], alpha=0)


# --- stratified PPI -----------------------------------------------------------------------------


def _brute_force_stratified_ppi(strata, power_tuning=True):
    """Fisch et al. (2024) stratified PPI++ written out with loops over items: the reference."""
    total_N = sum(s["N_h"] for s in strata)
    estimate = variance = 0.0
    lams = []
    for s in strata:
        y, f, fu = list(map(float, s["y"])), list(map(float, s["yhat"])), list(map(float, s["yhat_unlabeled"]))
        n, m, W = len(y), len(fu), s["N_h"] / total_N
        mean_y, mean_f = sum(y) / n, sum(f) / n
        cov = sum((y[i] - mean_y) * (f[i] - mean_f) for i in range(n)) / n
        pooled = f + fu
        mean_pooled = sum(pooled) / len(pooled)
        var_pooled = sum((v - mean_pooled) ** 2 for v in pooled) / (len(pooled) - 1)
        lam = min(1.0, max(0.0, cov / ((1 + n / m) * var_pooled))) if power_tuning else 1.0
        mean_fu = sum(fu) / m
        rectifier = [y[i] - lam * f[i] for i in range(n)]
        mean_r = sum(rectifier) / n
        var_r = sum((r - mean_r) ** 2 for r in rectifier) / n
        var_fu = sum((lam * v - lam * mean_fu) ** 2 for v in fu) / m
        estimate += W * (lam * mean_fu + mean_r)
        variance += W**2 * (var_fu / m + var_r / n)
        lams.append(lam)
    return estimate, math.sqrt(variance), lams


def _strata(seed):
    rng = np.random.default_rng(seed)
    strata = []
    for N, prevalence, agreement, n, m in ((5000, 0.01, 0.95, 12, 40), (800, 0.2, 0.8, 15, 30), (200, 0.6, 0.9, 9, 25)):
        truth = (rng.random(n + m) < prevalence).astype(float)
        truth[:2] = (0, 1)  # every stratum's audit has both labels
        llm = np.where(rng.random(n + m) < agreement, truth, 1 - truth)
        strata.append({"N_h": N, "y": truth[:n], "yhat": llm[:n], "yhat_unlabeled": llm[n:]})
    return strata


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("power_tuning", [True, False])
def test_stratified_ppi_against_brute_force(seed, power_tuning):
    strata = _strata(seed)
    result = stratified_ppi_mean(strata, alpha=0.05, power_tuning=power_tuning)
    estimate, se, lams = _brute_force_stratified_ppi(strata, power_tuning)
    assert result["estimate"] == pytest.approx(estimate, rel=1e-12)
    assert result["se"] == pytest.approx(se, rel=1e-12)
    assert result["lam"] == pytest.approx(lams, abs=1e-12)
    assert result["ci"] == pytest.approx((estimate - Z95 * se, estimate + Z95 * se))
    zero = [{**s, "yhat_unlabeled": s["yhat_unlabeled"]} for s in strata]
    classical_estimate = sum(s["N_h"] * s["y"].mean() for s in zero) / sum(s["N_h"] for s in zero)
    assert result["classical"]["estimate"] == pytest.approx(classical_estimate)


def test_one_stratum_stratified_ppi_is_ppi_python():
    y, yhat, unlabeled, _ = _audit(6)
    result = stratified_ppi_mean([{"N_h": 10**6, "y": y, "yhat": yhat, "yhat_unlabeled": unlabeled}], alpha=0.1)
    low, high = ppi_py.ppi_mean_ci(y, yhat, unlabeled, alpha=0.1)
    assert result["ci"] == pytest.approx((low[0], high[0]), rel=1e-12)
    assert result["lam"][0] == ppi_mean(y, yhat, unlabeled, power_tuning=True)["lam"]


def test_stratified_ppi_fully_audited_stratum_is_classical():
    strata = _strata(7)
    strata[2] = {**strata[2], "yhat_unlabeled": []}
    result = stratified_ppi_mean(strata)
    assert result["lam"][2] == 0
    assert result["strata"][2]["estimate"] == pytest.approx(np.mean(strata[2]["y"]))
    assert result["strata"][2]["N_unlabeled"] == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"N_h": 0}, "N_h must be at least 1"),
        ({"y": [1], "yhat": [1]}, r"strata\[0\].y: at least two human labels"),
        ({"yhat": [1, 0, 1]}, "unequal lengths"),
    ],
)
def test_stratified_ppi_raises(change, message):
    stratum = {"N_h": 100, "y": [1, 0], "yhat": [1, 0], "yhat_unlabeled": [0, 1, 1]}
    with pytest.raises(ValueError, match=message):
        stratified_ppi_mean([{**stratum, **change}])
    with pytest.raises(ValueError, match="strata: empty input"):
        stratified_ppi_mean([])
    with pytest.raises(ValueError, match="missing 'yhat_unlabeled'"):
        stratified_ppi_mean([{"N_h": 100, "y": [1, 0], "yhat": [1, 0]}])
