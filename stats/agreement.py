"""Inter-rater agreement statistics (pure: no Django, no I/O).

Input conventions
-----------------
- Multi-rater functions take ``units``: a sequence of ``{labeler_id: label}`` mappings, one
  per unit (item). Labelers may be missing from any unit. A unit with fewer than two
  ratings is *unpairable*: it carries no information about agreement and is left out of
  every multi-rater statistic (Krippendorff's convention), and counted in ``Estimate.units``
  only when it was used.
- ``categories`` is the list of possible labels (the policy's taxonomy). It matters for
  Gwet's AC1, whose chance agreement depends on the number of categories, and it fixes the
  order for ordinal α. When omitted, the labels observed in the data are used (sorted).
- Pairwise functions take two equal-length label lists (one rating each per unit).
- A statistic that is undefined for the data (one category only, no pairable unit, …) is
  ``Estimate(value=None, reason=...)``: never NaN, never an exception.

Implementation: every multi-rater statistic here is a function of the units' category
counts. Units with the same count vector contribute identically, so the data are
compressed to distinct count patterns with multiplicities; bootstrap resamples of units
are then multinomial draws over patterns, which makes 1,000 resamples of 100,000 units
take well under a second. Point estimates of α come from the `krippendorff` package;
the tests check every kernel against krippendorff, statsmodels and scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

Units = Sequence[Mapping[Hashable, Hashable]]
Level = Literal["nominal", "ordinal", "interval", "ratio"]
LEVELS: tuple[str, ...] = ("nominal", "ordinal", "interval", "ratio")


@dataclass(frozen=True)
class Estimate:
    """A statistic's value (None when undefined, with the reason) and its confidence interval."""

    value: float | None
    reason: str | None = None
    units: int = 0
    ci_low: float | None = None
    ci_high: float | None = None
    ci_reason: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def undefined(reason: str, units: int = 0) -> Estimate:
    return Estimate(value=None, reason=reason, units=units)


@dataclass(frozen=True)
class CountTable:
    """Distinct category-count patterns of pairable units and how many units have each."""

    categories: tuple[Hashable, ...]
    patterns: np.ndarray  # (P, q) int: ratings per category in a unit
    multiplicity: np.ndarray  # (P,) int: units with that pattern
    unpairable: int  # units with fewer than two ratings

    @property
    def units(self) -> int:
        return int(self.multiplicity.sum())


def count_table(units: Units, categories: Sequence[Hashable] | None = None) -> CountTable:
    """Compress units into a :class:`CountTable`. Raises ValueError on a label outside ``categories``."""
    if categories is None:
        categories = sorted({label for unit in units for label in unit.values()}, key=_sort_key)
    categories = tuple(categories)
    index = {category: i for i, category in enumerate(categories)}
    if len(index) != len(categories):
        raise ValueError("categories: duplicate category")
    rows: list[list[int]] = []
    unpairable = 0
    for number, unit in enumerate(units):
        if len(unit) < 2:
            unpairable += 1
            continue
        row = [0] * len(categories)
        for labeler, label in unit.items():
            try:
                row[index[label]] += 1
            except KeyError:
                raise ValueError(f"unit {number}: labeler {labeler!r}: label {label!r} is not a category") from None
        rows.append(row)
    if not rows:
        empty = np.zeros((0, len(categories)), dtype=np.int64)
        return CountTable(categories, empty, np.zeros(0, dtype=np.int64), unpairable)
    counts = np.asarray(rows, dtype=np.int64)
    # One integer key per row (mixed radix) makes the grouping a 1-d unique: far faster than axis=0.
    radix = int(counts.max()) + 1
    keys = counts @ (radix ** np.arange(counts.shape[1], dtype=np.int64))
    _, first, multiplicity = np.unique(keys, return_index=True, return_counts=True)
    return CountTable(categories, counts[first], multiplicity.astype(np.int64), unpairable)


def as_count_table(units: Units | CountTable, categories: Sequence[Hashable] | None = None) -> CountTable:
    """Pass a precomputed :class:`CountTable` to skip re-reading the units in repeated calls."""
    return units if isinstance(units, CountTable) else count_table(units, categories)


def _sort_key(value: Hashable) -> tuple[str, str]:
    return (type(value).__name__, str(value)) if not isinstance(value, int | float) else ("", f"{value:020.6f}")


# --- kernels: weights has shape (B, P) (B = 1 for a point estimate); results shape (B,) -----


def _unit_agreement(patterns: np.ndarray) -> np.ndarray:
    ratings = patterns.sum(axis=1)
    return (patterns * (patterns - 1)).sum(axis=1) / (ratings * (ratings - 1))


def _kernel_percent(table: CountTable, weights: np.ndarray) -> np.ndarray:
    return weights @ _unit_agreement(table.patterns) / weights.sum(axis=1)


def _category_shares(table: CountTable, weights: np.ndarray) -> np.ndarray:
    """π_k: the mean over units of the share of a unit's ratings in category k, shape (B, q)."""
    shares = table.patterns / table.patterns.sum(axis=1, keepdims=True)
    return weights @ shares / weights.sum(axis=1, keepdims=True)


def _chance_corrected(observed: np.ndarray, chance: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        value = (observed - chance) / (1.0 - chance)
    return np.where(np.isclose(chance, 1.0), np.nan, value)


def _kernel_fleiss(table: CountTable, weights: np.ndarray) -> np.ndarray:
    pi = _category_shares(table, weights)
    return _chance_corrected(_kernel_percent(table, weights), (pi**2).sum(axis=1))


def _kernel_ac1(table: CountTable, weights: np.ndarray) -> np.ndarray:
    q = len(table.categories)
    if q < 2:
        return np.full(weights.shape[0], np.nan)
    pi = _category_shares(table, weights)
    chance = (pi * (1.0 - pi)).sum(axis=1) / (q - 1)
    return _chance_corrected(_kernel_percent(table, weights), chance)


def _coincidences(table: CountTable, weights: np.ndarray) -> np.ndarray:
    """Krippendorff's coincidence matrices o_ck, shape (B, q, q)."""
    patterns = table.patterns.astype(np.float64)
    ratings = patterns.sum(axis=1)
    per_unit = np.einsum("pi,pj->pij", patterns, patterns)
    per_unit[:, np.arange(patterns.shape[1]), np.arange(patterns.shape[1])] -= patterns
    per_unit /= (ratings - 1)[:, None, None]
    return np.einsum("bp,pij->bij", weights, per_unit)


def _distances(level: str, categories: Sequence[Hashable], marginals: np.ndarray) -> np.ndarray:
    """Squared distances δ²_ck, shape (B, q, q); ordinal ones depend on the marginals n_c."""
    q = len(categories)
    batch = marginals.shape[0]
    if level == "nominal":
        return np.broadcast_to(1.0 - np.eye(q), (batch, q, q))
    if level == "ordinal":
        cumulative = np.cumsum(marginals, axis=1)
        low = np.minimum.outer(np.arange(q), np.arange(q))
        high = np.maximum.outer(np.arange(q), np.arange(q))
        # Σ_{g=c..k} n_g − (n_c + n_k)/2, Krippendorff (2011) p. 6
        span = cumulative[:, high] - np.where(low > 0, cumulative[:, np.maximum(low - 1, 0)], 0.0)
        half = (marginals[:, :, None] + marginals[:, None, :]) / 2.0
        return (span - half) ** 2
    values = np.asarray(categories, dtype=np.float64)
    difference = np.subtract.outer(values, values)
    if level == "interval":
        return np.broadcast_to(difference**2, (batch, q, q))
    total = np.add.outer(values, values)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(total == 0, 0.0, (difference / total) ** 2)
    return np.broadcast_to(ratio, (batch, q, q))


def _kernel_alpha(table: CountTable, weights: np.ndarray, level: str = "nominal") -> np.ndarray:
    coincidences = _coincidences(table, weights)
    marginals = coincidences.sum(axis=2)
    total = marginals.sum(axis=1)
    distances = _distances(level, table.categories, marginals)
    observed = (coincidences * distances).sum(axis=(1, 2))
    expected = np.einsum("bi,bj,bij->b", marginals, marginals, distances) / (total - 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = 1.0 - observed / expected
    return np.where(expected > 0, value, np.nan)


KERNELS = {
    "percent_agreement": _kernel_percent,
    "fleiss_kappa": _kernel_fleiss,
    "gwet_ac1": _kernel_ac1,
    "krippendorff_alpha": _kernel_alpha,
}


def _point(table: CountTable, name: str, **options) -> float:
    return float(KERNELS[name](table, table.multiplicity[None, :].astype(np.float64), **options)[0])


def _finite_or_undefined(value: float, table: CountTable, reason: str) -> Estimate:
    if value is None or not math.isfinite(value):
        return undefined(reason, table.units)
    return Estimate(value=float(value), units=table.units)


# --- public statistics -----------------------------------------------------------------------


def percent_agreement(units: Units | CountTable, categories: Sequence[Hashable] | None = None) -> Estimate:
    """Mean over pairable units of the share of agreeing rating pairs (Fleiss' P̄)."""
    table = as_count_table(units, categories)
    if table.units == 0:
        return undefined("no unit has two or more ratings")
    return Estimate(value=_point(table, "percent_agreement"), units=table.units)


def fleiss_kappa(units: Units | CountTable, categories: Sequence[Hashable] | None = None) -> Estimate:
    """Fleiss' κ (1971). With unequal numbers of ratings per unit, the generalisation in
    Gwet (2014, ch. 2): P̄ over pairable units, π_k as the mean share of ratings in k. With
    equal numbers it is exactly Fleiss' formula; the tests check it against statsmodels
    (not imported here: its import alone costs more than the whole computation)."""
    table = as_count_table(units, categories)
    if table.units == 0:
        return undefined("no unit has two or more ratings")
    if len(table.categories) < 2 or np.count_nonzero(table.patterns.sum(axis=0)) < 2:
        return undefined("only one category was used: chance agreement is 1", table.units)
    return _finite_or_undefined(_point(table, "fleiss_kappa"), table, "chance agreement is 1")


def gwet_ac1(units: Units | CountTable, categories: Sequence[Hashable] | None = None) -> Estimate:
    """Gwet's AC1 (Gwet 2008), for any number of raters, missing ratings allowed; the number
    of categories q is ``len(categories)``."""
    table = as_count_table(units, categories)
    if table.units == 0:
        return undefined("no unit has two or more ratings")
    if len(table.categories) < 2:
        return undefined("fewer than two categories", table.units)
    return _finite_or_undefined(_point(table, "gwet_ac1"), table, "chance agreement is 1")


def krippendorff_alpha(
    units: Units | CountTable, level: Level = "nominal", categories: Sequence[Hashable] | None = None
) -> Estimate:
    """Krippendorff's α (Krippendorff 2011) at the given level of measurement.

    ``ordinal`` uses the order of ``categories``; ``interval`` and ``ratio`` need numeric
    categories. Computed by the `krippendorff` package from the units' value counts.
    """
    import krippendorff

    if level not in LEVELS:
        raise ValueError(f"level: must be one of {', '.join(LEVELS)}, not {level!r}")
    table = as_count_table(units, categories)
    if table.units == 0:
        return undefined("no unit has two or more ratings")
    if np.count_nonzero(table.patterns.sum(axis=0)) < 2:
        return undefined("only one value was used: expected disagreement is 0", table.units)
    counts = np.repeat(table.patterns, table.multiplicity, axis=0)
    domain = list(table.categories) if level in ("interval", "ratio") else list(range(len(table.categories)))
    value = float(krippendorff.alpha(value_counts=counts, value_domain=domain, level_of_measurement=level))
    return _finite_or_undefined(value, table, "expected disagreement is 0")


def per_label_alpha(
    units: Units | CountTable, categories: Sequence[Hashable] | None = None
) -> dict[Hashable, Estimate]:
    """One-vs-rest nominal α for each category: how reliably labelers agree on 'k or not k'."""
    table = as_count_table(units, categories)
    result: dict[Hashable, Estimate] = {}
    for index, category in enumerate(table.categories):
        if table.units == 0:
            result[category] = undefined("no unit has two or more ratings")
            continue
        inside = table.patterns[:, index]
        binary = CountTable(
            ("other", category),
            np.stack([table.patterns.sum(axis=1) - inside, inside], axis=1),
            table.multiplicity,
            table.unpairable,
        )
        if not inside.any() or np.all(inside == binary.patterns.sum(axis=1)):
            result[category] = undefined(f"every rating is {'not ' if not inside.any() else ''}{category}", table.units)
            continue
        result[category] = _finite_or_undefined(
            _point(binary, "krippendorff_alpha"), binary, "expected disagreement is 0")
    return result


def _cohen_from_codes(first: np.ndarray, second: np.ndarray, q: int) -> float:
    """Cohen's κ from integer-coded labels: one bincount for the confusion matrix."""
    n = first.size
    confusion = np.bincount(first * q + second, minlength=q * q).reshape(q, q) / n
    observed = np.trace(confusion)
    chance = float(confusion.sum(axis=1) @ confusion.sum(axis=0))
    if math.isclose(chance, 1.0):
        return math.nan
    return (observed - chance) / (1.0 - chance)


def cohen_kappa(
    first: Sequence[Hashable], second: Sequence[Hashable], categories: Sequence[Hashable] | None = None
) -> Estimate:
    """Cohen's κ for two raters over the same units (Cohen 1960).

    Vectorised (one bincount) because golden sets compute it for every labeler pair and every
    labeler against gold; the tests check it against scikit-learn's ``cohen_kappa_score``.
    """
    if len(first) != len(second):
        raise ValueError(f"the two label lists differ in length: {len(first)} and {len(second)}")
    if not first:
        return undefined("no shared units")
    used = set(first) | set(second)
    if len(used) < 2:
        return undefined("both raters used one and the same category: chance agreement is 1", len(first))
    labels = list(categories) if categories is not None else sorted(used, key=_sort_key)
    index = {label: i for i, label in enumerate(labels)}
    try:
        codes = np.fromiter((index[label] for label in first), dtype=np.int64, count=len(first))
        other = np.fromiter((index[label] for label in second), dtype=np.int64, count=len(second))
    except KeyError as exc:
        raise ValueError(f"label {exc.args[0]!r} is not a category") from None
    value = _cohen_from_codes(codes, other, len(labels))
    if not math.isfinite(value):
        return undefined("chance agreement is 1", len(first))
    return Estimate(value=float(value), units=len(first))
