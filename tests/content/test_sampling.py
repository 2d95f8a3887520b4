"""The pure sampling designs: sizes, allocations, and inclusion probabilities that hold."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from content.sampling import (
    SamplingError,
    largest_remainder,
    pps_probabilities,
    score_weighted,
    stratified,
    uniform,
)


@settings(max_examples=80, deadline=None)
@given(frame=st.integers(1, 500), data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_uniform_has_n_distinct_units_each_with_n_over_N(frame: int, data, seed: int) -> None:
    n = data.draw(st.integers(1, frame))
    draw = uniform(frame, n, seed)
    assert len(np.unique(draw.indices)) == n and draw.indices.max() < frame
    assert np.allclose(draw.probabilities, n / frame)
    assert np.isclose((1 / draw.probabilities).sum(), frame)  # HT estimate of N is exact


@settings(max_examples=80, deadline=None)
@given(sizes=st.lists(st.integers(1, 60), min_size=1, max_size=6), data=st.data(),
       allocation=st.sampled_from(["proportional", "equal", "neyman"]), seed=st.integers(0, 2**31))
def test_stratified_allocations_sum_to_n_and_respect_stratum_sizes(sizes, data, allocation, seed) -> None:
    labels = [f"s{h}" for h, size in enumerate(sizes) for _ in range(size)]
    n = data.draw(st.integers(1, len(labels)))
    aux = np.random.default_rng(seed).random(len(labels))
    draw = stratified(labels, n, seed, allocation, aux)
    assert len(draw.indices) == n == sum(v["sample"] for v in draw.strata.values())
    for info in draw.strata.values():
        assert 0 <= info["sample"] <= info["frame"]
        if n >= len(sizes):
            assert info["sample"] >= 1
    labels_arr = np.array(labels)
    for index, p in zip(draw.indices, draw.probabilities, strict=True):
        info = draw.strata[labels_arr[index]]
        assert p == pytest.approx(info["sample"] / info["frame"])
    if n >= len(sizes):  # every stratum sampled: the HT estimate of N is exact
        assert (1 / draw.probabilities).sum() == pytest.approx(len(labels))


def test_proportional_allocation_by_hand() -> None:
    draw = stratified(["a"] * 500 + ["b"] * 300 + ["c"] * 200, 100, 1)
    assert {k: v["sample"] for k, v in draw.strata.items()} == {"a": 50, "b": 30, "c": 20}


def test_neyman_puts_more_where_the_spread_is() -> None:
    rng = np.random.default_rng(0)
    aux = np.r_[rng.normal(0, 1, 500), rng.normal(0, 5, 500)]
    draw = stratified(["calm"] * 500 + ["wild"] * 500, 120, 1, "neyman", aux)
    assert draw.strata["wild"]["sample"] > 3 * draw.strata["calm"]["sample"]


def test_largest_remainder_caps_and_redistributes() -> None:
    assert largest_remainder(np.array([5.0, 5.0]), 10, np.array([2, 100])).tolist() == [2, 8]
    assert largest_remainder(np.array([1 / 3, 1 / 3, 1 / 3]), 2, np.array([5, 5, 5])).sum() == 2


@settings(max_examples=60, deadline=None)
@given(scores=st.lists(st.floats(0, 1), min_size=2, max_size=300), data=st.data(), seed=st.integers(0, 2**31))
def test_score_weighted_is_fixed_size_with_probabilities_summing_to_n(scores, data, seed) -> None:
    n = data.draw(st.integers(1, len(scores)))
    pi = pps_probabilities(np.maximum(np.array(scores), 0.01), n)
    assert pi.sum() == pytest.approx(n) and pi.min() > 0 and pi.max() <= 1 + 1e-12
    draw = score_weighted(scores, n, seed)
    assert len(draw.indices) == n == len(np.unique(draw.indices))
    assert np.allclose(draw.probabilities, pi[draw.indices])


def test_score_weighted_empirical_inclusion_matches_pi() -> None:
    scores = np.r_[np.linspace(0, 1, 40), [0.0] * 10]
    n, runs = 8, 4000
    pi = pps_probabilities(np.maximum(scores, 0.05), n)
    counts = np.zeros(len(scores))
    for seed in range(runs):
        counts[score_weighted(scores, n, seed, floor=0.05).indices] += 1
    frequency = counts / runs
    sd = np.sqrt(pi * (1 - pi) / runs) + 1e-9
    assert np.all(np.abs(frequency - pi) < 5 * sd + 0.005)
    assert frequency[-10:].min() > 0  # the floor keeps zero-score items drawable


def test_bad_parameters_are_explained() -> None:
    with pytest.raises(SamplingError, match="exceeds the frame size"):
        uniform(5, 6, 0)
    with pytest.raises(SamplingError, match="frame is empty"):
        uniform(0, 1, 0)
    with pytest.raises(SamplingError, match="floor must be positive"):
        score_weighted([0.5], 1, 0, floor=0)
    with pytest.raises(SamplingError, match="Neyman allocation needs"):
        stratified(["a", "b"], 1, 0, "neyman")
    with pytest.raises(SamplingError, match="allocation 'optimal'"):
        stratified(["a"], 1, 0, "optimal")
