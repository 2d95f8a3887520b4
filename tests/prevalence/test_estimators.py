"""prevalence.estimators (pure): the routing-aware estimators are unbiased and cover by simulation,
the naive one (human-labelled items as a simple random sample) is biased; bad input is named."""

from __future__ import annotations

import numpy as np
import pytest

from prevalence.estimators import (
    EstimatorInputError,
    RoutedUnits,
    naive_batch,
    pseudo_values_batch,
    routed_hajek_batch,
    routed_prevalence,
    stratum_batch,
)

REPLICATES, N_SAMPLE, AUDIT = 500, 4000, 0.2
Z = 1.959963984540054


def _phase_two(rng, p: float, good_llm: bool):
    """500 samples of 4,000 (a frame of 10⁷: π = 4·10⁻⁴): violations are routed to people by rule
    more often (hard cases), the auto group is audited at 20 %."""
    shape = (REPLICATES, N_SAMPLE)
    y = (rng.random(shape) < p).astype(float)
    census = np.where(y == 1, rng.random(shape) < 0.5, rng.random(shape) < 0.08)
    hit, false_alarm = (0.9, 0.005) if good_llm else (0.6, 0.03)
    yhat = np.where(y == 1, rng.random(shape) < hit, rng.random(shape) < false_alarm).astype(float)
    audit = ~census & (rng.random(shape) < AUDIT)
    return y, yhat, census | audit, census


@pytest.mark.parametrize(("p", "good_llm"), [(0.05, True), (0.05, False), (0.2, True), (0.2, False)])
def test_routing_aware_estimators_are_unbiased_and_cover(p, good_llm):
    rng = np.random.default_rng(int(p * 1000) + good_llm)
    y, yhat, labelled, census = _phase_two(rng, p, good_llm)
    pi = np.full(y.shape, N_SAMPLE / 1e7)
    results = {}
    for name, lam in (("ppi", 1.0), ("classical", 0.0)):
        results[name] = routed_hajek_batch(y, yhat, labelled, census, pi, lam)
    mean, var = stratum_batch(pseudo_values_batch(y, yhat, labelled, census, 1.0), 1e7)
    results["stratified-ppi (λ = 1)"] = {"estimate": mean, "se": np.sqrt(var)}
    for name, out in results.items():
        estimate, se = out["estimate"], out["se"]
        monte_carlo_se = estimate.std() / np.sqrt(REPLICATES)
        assert abs(estimate.mean() - p) < 3 * monte_carlo_se, name
        assert np.mean(np.abs(estimate - p) <= Z * se) >= 0.93, name
    naive = naive_batch(y, labelled)
    assert naive.mean() - p > 10 * naive.std() / np.sqrt(REPLICATES)  # far above the truth
    if good_llm:  # a good LLM narrows the interval
        assert results["ppi"]["se"].mean() < 0.9 * results["classical"]["se"].mean()


def test_pseudo_values_sum_to_ppi_per_cell():
    # One auto cell: 2 audited (y − ŷ = 1, 0), 3 not (ŷ = 1, 0, 0): n [λ mean_u ŷ + mean_l (y − λŷ)].
    y = np.array([1.0, 0, 0, 0, 0])
    yhat = np.array([0.0, 0, 1, 0, 0])
    labelled = np.array([True, True, False, False, False])
    census = np.zeros(5, dtype=bool)
    psi = pseudo_values_batch(y, yhat, labelled, census, 1.0)
    assert psi.sum() == pytest.approx(5 * (1 / 3 + 1 / 2))


def _units(**overrides):
    base = {"y": [1, 0, 1, 0], "yhat": [1, 0, 1, 0], "labelled": [True, True, True, False],
            "census": [True, True, False, False], "pi": [0.5] * 4}
    return RoutedUnits.from_lists(**{**base, **overrides})


@pytest.mark.parametrize(("overrides", "message"), [
    ({"pi": [0.5, 0.5, 0.5, 0.0]}, "pi: inclusion probabilities must be in (0, 1]"),
    ({"y": [1, 0]}, "y: length 2, expected 4"),
    ({"pending": [True, False, False, False]}, "pending: a unit cannot be both labelled and pending"),
])
def test_bad_units_name_the_argument(overrides, message):
    with pytest.raises(EstimatorInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _units(**overrides)


def test_bad_estimator_alpha_and_design():
    units = _units()
    with pytest.raises(EstimatorInputError, match="estimator: must be one of"):
        routed_prevalence(units, "bootstrap", audit_share=0.5)
    with pytest.raises(EstimatorInputError, match="alpha: must be between 0 and 1"):
        routed_prevalence(units, "ppi", audit_share=0.5, alpha=0)
    with pytest.raises(EstimatorInputError, match="stratum '' has unequal ones"):
        routed_prevalence(_units(pi=[0.5, 0.2, 0.5, 0.5]), "stratified", audit_share=0.5)
    with pytest.raises(EstimatorInputError, match="no human label among the 2 auto-accepted items"):
        routed_prevalence(_units(labelled=[True, True, False, False]), "ppi", audit_share=0.5)


def test_every_estimator_of_the_scalar_api_is_unbiased():
    # 200 draws through routed_prevalence (the path the service takes), two sample strata.
    rng = np.random.default_rng(9)
    p, n, audit, draws = 0.2, 2000, 0.25, 200
    found: dict[str, list] = {kind: [] for kind in ("ht", "hajek", "ppi++", "stratified-ppi")}
    for _ in range(draws):
        y = (rng.random(n) < p).astype(float)
        census = np.where(y == 1, rng.random(n) < 0.5, rng.random(n) < 0.08)
        yhat = np.where(y == 1, rng.random(n) < 0.9, rng.random(n) < 0.01).astype(float)
        labelled = census | (~census & (rng.random(n) < audit))
        units = RoutedUnits.from_lists(y=y, yhat=yhat, labelled=labelled, census=census, pi=np.full(n, n / 1e6),
                                       stratum=np.where(np.arange(n) % 2 == 0, "a", "b"))
        for kind in found:
            out = routed_prevalence(units, kind, audit_share=audit, frame_size=1e6)
            found[kind].append((out["estimate"], out["ci"][0], out["ci"][1]))
    for kind, rows in found.items():
        values = np.array(rows)
        bias = abs(values[:, 0].mean() - p)
        if kind in ("ppi++", "stratified-ppi"):
            # λ tuned on the same labels: a small O(1/n) bias (about −0.002 here, 1 % of p).
            assert bias < 0.02 * p, kind
        else:
            assert bias < 3 * values[:, 0].std() / np.sqrt(draws), kind
        assert np.mean((values[:, 1] <= p) & (p <= values[:, 2])) >= 0.9, kind  # 200 draws: loose
