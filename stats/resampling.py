"""Bootstrap confidence intervals for the multi-rater statistics (pure)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from .agreement import KERNELS, CountTable, Estimate, Units, as_count_table

# Below this share of defined resamples an interval would describe a different population.
MIN_DEFINED_SHARE = 0.95
# Statistics whose category shares count single-rated units too (Gwet 2014).
SHARES_FROM_SINGLE_RATINGS = frozenset({"fleiss_kappa", "gwet_ac1"})


def bootstrap_ci(
    units: Units | CountTable,
    statistic: str,
    *,
    categories: Sequence[Hashable] | None = None,
    level: str = "nominal",
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    batch: int = 250,
) -> tuple[float | None, float | None, str | None]:
    """Percentile bootstrap interval for ``statistic`` resampling units with replacement.

    ``statistic`` is one of ``percent_agreement``, ``fleiss_kappa``, ``gwet_ac1``,
    ``krippendorff_alpha`` (with ``level``). Resampling units is multinomial over the
    distinct count patterns, exactly equivalent to drawing unit indices. The units drawn
    are the ones the statistic reads: every rated unit for Fleiss' κ and AC1 (single-rated
    units enter their category shares), pairable units for percent agreement and α.
    Returns ``(low, high, reason)``; the bounds are None with a reason when the interval is
    undefined. Deterministic for a given ``seed``.
    """
    if statistic not in KERNELS:
        raise ValueError(f"statistic: must be one of {', '.join(KERNELS)}, not {statistic!r}")
    if not 0 < confidence < 1:
        raise ValueError("confidence: must be between 0 and 1")
    table = as_count_table(units, categories)
    if statistic not in SHARES_FROM_SINGLE_RATINGS:
        table = table.pairable_only()
    if table.units < 2:
        return None, None, "fewer than two pairable units"
    options = {"level": level} if statistic == "krippendorff_alpha" else {}
    kernel = KERNELS[statistic]
    rng = np.random.default_rng(seed)
    shares = table.multiplicity / table.multiplicity.sum()
    values = []
    remaining = n_resamples
    while remaining > 0:
        size = min(batch, remaining)
        weights = rng.multinomial(table.rated, shares, size=size).astype(np.float64)
        values.append(kernel(table, weights, **options))
        remaining -= size
    draws = np.concatenate(values)
    defined = draws[np.isfinite(draws)]
    if defined.size < MIN_DEFINED_SHARE * n_resamples:
        return None, None, f"undefined in {n_resamples - defined.size} of {n_resamples} resamples"
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(defined, [tail, 100 - tail])
    return float(low), float(high), None


def with_ci(estimate: Estimate, interval: tuple[float | None, float | None, str | None]) -> Estimate:
    low, high, reason = interval
    if estimate.value is None:
        low = high = None
        reason = reason or estimate.reason
    return Estimate(estimate.value, estimate.reason, estimate.units, low, high, reason)
