"""Probability sampling of content items. Pure: numpy only, no Django.

Every design returns, for each selected unit, its first-order inclusion probability π_i, so
estimates from the sample are unbiased for the frame:

- Horvitz–Thompson total of y:      T̂ = Σ_s y_i / π_i
- prevalence (Hájek ratio):         p̂ = Σ_s (y_i / π_i) / Σ_s (1 / π_i)
- stratified prevalence:            p̂ = Σ_h (N_h / N) · p̂_h, with p̂_h the stratum sample mean

Designs (all reproducible from (frame order, parameters, seed); the frame is ordered by id):

- ``uniform``: simple random sampling without replacement, π_i = n / N.
- ``stratified``: SRSWOR within each stratum, π_i = n_h / N_h. Allocation of n over strata:
  proportional (n_h ∝ N_h), equal (n_h = n / H) or Neyman (n_h ∝ N_h S_h, S_h the standard
  deviation of an auxiliary score within the stratum). Fractional allocations are rounded by
  largest remainder; a stratum never gets more than N_h, and the excess goes to the others;
  when n ≥ H every stratum gets at least one unit.
- ``score_weighted``: probability proportional to size, size w_i = max(score_i, floor), so no
  unit has probability 0. π_i = n w_i / Σ w, capped at 1 (capped units are taken with
  certainty and the rest rescaled). Selection is randomized systematic sampling: fixed size
  n and exactly these π_i; Σ π_i = n.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ALLOCATIONS = ("proportional", "equal", "neyman")


class SamplingError(ValueError):
    pass


@dataclass(frozen=True)
class Draw:
    indices: np.ndarray  # positions in the frame, ascending
    probabilities: np.ndarray  # π_i of each selected position
    strata: dict[str, dict[str, float]]  # per stratum: frame size, sample size (and SD for Neyman)


def _check_size(n: int, frame_size: int) -> None:
    if frame_size == 0:
        raise SamplingError("the frame is empty: no items match")
    if n < 1:
        raise SamplingError(f"sample size must be at least 1, got {n}")
    if n > frame_size:
        raise SamplingError(f"sample size {n} exceeds the frame size {frame_size}")


def uniform(frame_size: int, n: int, seed: int) -> Draw:
    _check_size(n, frame_size)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(frame_size, size=n, replace=False))
    return Draw(chosen, np.full(n, n / frame_size), {"": {"frame": frame_size, "sample": n}})


def largest_remainder(quotas: np.ndarray, total: int, caps: np.ndarray) -> np.ndarray:
    """Integers summing to ``total``, close to ``quotas``, never above ``caps``."""
    alloc = np.zeros(len(quotas), dtype=int)
    remaining_total = total
    active = np.ones(len(quotas), dtype=bool)
    weights = quotas.astype(float).copy()
    while remaining_total > 0 and active.any():
        share = np.where(active, weights, 0.0)
        if share.sum() <= 0:
            share = np.where(active, 1.0, 0.0)
        target = share / share.sum() * remaining_total
        floor = np.minimum(np.floor(target).astype(int), caps - alloc)
        alloc += floor
        remaining_total -= int(floor.sum())
        room = caps - alloc
        active = room > 0
        if remaining_total <= 0 or not active.any():
            break
        remainders = np.where(active, target - np.floor(target), -1.0)
        for index in np.argsort(-remainders, kind="stable"):
            if remaining_total == 0 or not active[index]:
                break
            alloc[index] += 1
            remaining_total -= 1
            active[index] = caps[index] > alloc[index]
    return alloc


def allocate(quotas: np.ndarray, n: int, caps: np.ndarray) -> np.ndarray:
    """Integer stratum sizes n_h summing to n, close to ``quotas``, with n_h <= caps[h]. Every
    stratum that has units gets at least one when there are enough, so that each stratum's mean
    can be estimated; the rest follows the quotas (largest remainder)."""
    caps = np.asarray(caps)
    alloc = largest_remainder(np.asarray(quotas, dtype=float), n, caps)
    if n >= int((caps > 0).sum()):
        for empty in np.flatnonzero((alloc == 0) & (caps > 0)):
            donor = int(np.argmax(alloc))
            alloc[donor] -= 1
            alloc[empty] += 1
    return alloc


def stratified(strata: Sequence[str], n: int, seed: int, allocation: str = "proportional",
               aux: Sequence[float] | None = None) -> Draw:
    """``strata[i]`` is unit i's stratum; ``aux`` (Neyman only) an auxiliary score per unit."""
    if allocation not in ALLOCATIONS:
        raise SamplingError(f"allocation {allocation!r}: use one of {', '.join(ALLOCATIONS)}")
    labels = np.asarray(strata, dtype=object)
    _check_size(n, len(labels))
    names = sorted(set(labels.tolist()))
    members = [np.flatnonzero(labels == name) for name in names]
    sizes = np.array([len(m) for m in members])
    info: dict[str, dict[str, float]] = {}
    if allocation == "proportional":
        quotas = sizes * n / sizes.sum()
    elif allocation == "equal":
        quotas = np.full(len(names), n / len(names))
    else:
        if aux is None:
            raise SamplingError("Neyman allocation needs an auxiliary score to estimate each stratum's SD")
        values = np.asarray(aux, dtype=float)
        sds = np.array([values[m].std(ddof=1) if len(m) > 1 else 0.0 for m in members])
        quotas = sizes * sds
        if quotas.sum() == 0:
            quotas = sizes.astype(float)  # no variation anywhere: fall back to proportional
        for name, sd in zip(names, sds, strict=True):
            info[name] = {"sd": float(sd)}
    alloc = allocate(quotas, n, sizes)
    rng = np.random.default_rng(seed)
    chosen, probs = [], []
    for name, member, size, take in zip(names, members, sizes, alloc, strict=True):
        info.setdefault(name, {}).update({"frame": int(size), "sample": int(take)})
        if take == 0:
            continue
        picked = rng.choice(member, size=int(take), replace=False)
        chosen.append(picked)
        probs.append(np.full(int(take), take / size))
    order = np.concatenate(chosen)
    prob = np.concatenate(probs)
    sort = np.argsort(order)
    return Draw(order[sort], prob[sort], info)


def pps_probabilities(sizes: np.ndarray, n: int) -> np.ndarray:
    """π_i = n w_i / Σw, with units whose π would exceed 1 taken with certainty."""
    pi = np.zeros(len(sizes))
    certain = np.zeros(len(sizes), dtype=bool)
    while True:
        rest = ~certain
        remaining = n - certain.sum()
        pi[rest] = remaining * sizes[rest] / sizes[rest].sum()
        pi[certain] = 1.0
        over = rest & (pi >= 1.0)
        if not over.any():
            return pi
        certain |= over


def score_weighted(scores: Sequence[float], n: int, seed: int, floor: float = 0.01) -> Draw:
    if floor <= 0:
        raise SamplingError("the floor must be positive so that every item can be drawn")
    values = np.asarray(scores, dtype=float)
    _check_size(n, len(values))
    if not np.all(np.isfinite(values)):
        raise SamplingError("scores must be finite numbers")
    sizes = np.maximum(values, floor)
    pi = pps_probabilities(sizes, n)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(values))  # randomized systematic sampling
    cumulative = np.cumsum(pi[order])
    start = rng.uniform(0.0, 1.0)
    points = start + np.arange(n)
    # Unit k is selected when a point falls in (cum_{k-1}, cum_k]; π_i ≤ 1 keeps it to one point.
    positions = np.searchsorted(cumulative, points - 1e-12, side="left")
    positions = np.minimum(positions, len(values) - 1)
    chosen = np.unique(order[positions])
    if len(chosen) != n:  # only possible through floating-point edge effects at π = 1
        certain = np.flatnonzero(pi >= 1.0 - 1e-9)
        chosen = np.unique(np.concatenate([chosen, certain]))[:n]
    return Draw(np.sort(chosen), pi[np.sort(chosen)], {"": {"frame": len(values), "sample": n}})
