"""Inter-rater agreement statistics (pure: no Django, no I/O).

Input conventions
-----------------
- Multi-rater functions take ``units``: a sequence of ``{labeler_id: label}`` mappings, one
  per unit (item). Labelers may be missing from any unit. A unit with fewer than two
  ratings is *unpairable*: it says nothing about agreement, so it never enters observed
  agreement (P̄ / p_a) nor Krippendorff's α. A unit with exactly one rating still says
  something about how the categories are used: Fleiss' κ and Gwet's AC1 count it in the
  category shares π_k, as Gwet (2014) does (see :func:`fleiss_kappa`). ``Estimate.units``
  is the number of pairable units (two or more ratings) in every statistic.
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
    """Distinct category-count patterns of rated units (one rating or more) and how many
    units have each. Patterns with a single rating are kept for the category shares of
    Fleiss' κ and AC1; every other statistic looks only at :attr:`pairable` patterns."""

    categories: tuple[Hashable, ...]
    patterns: np.ndarray  # (P, q) int: ratings per category in a unit
    multiplicity: np.ndarray  # (P,) int: units with that pattern
    unpairable: int  # units with fewer than two ratings (no rating at all included)

    @property
    def pairable(self) -> np.ndarray:
        """(P,) bool: patterns with two or more ratings."""
        return self.patterns.sum(axis=1) >= 2

    @property
    def units(self) -> int:
        """Pairable units: those with two or more ratings."""
        return int(self.multiplicity[self.pairable].sum())

    @property
    def rated(self) -> int:
        """Units with at least one rating."""
        return int(self.multiplicity.sum())

    def pairable_only(self) -> CountTable:
        """The same table without the single-rated patterns."""
        keep = self.pairable
        return CountTable(self.categories, self.patterns[keep], self.multiplicity[keep], self.unpairable)


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
            if not unit:
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
    """Share of agreeing rating pairs in each unit; 0 for a single-rated unit (weighted out)."""
    ratings = patterns.sum(axis=1)
    pairs = np.maximum(ratings * (ratings - 1), 1)
    return (patterns * (patterns - 1)).sum(axis=1) / pairs


def _kernel_percent(table: CountTable, weights: np.ndarray) -> np.ndarray:
    """p_a: mean over pairable units only."""
    pairable = weights * table.pairable
    with np.errstate(divide="ignore", invalid="ignore"):
        return pairable @ _unit_agreement(table.patterns) / pairable.sum(axis=1)


def _category_shares(table: CountTable, weights: np.ndarray) -> np.ndarray:
    """π_k: the mean over every rated unit (one rating or more) of the share of its ratings
    in category k, shape (B, q). Gwet (2014), and his irrCAC package."""
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
    # a single-rated unit's matrix is all zeros already: it pairs no value
    per_unit /= np.maximum(ratings - 1, 1)[:, None, None]
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
    """Fleiss' κ (1971). With missing ratings, Gwet's generalisation (Gwet 2014, ch. 2;
    his irrCAC ``fleiss.kappa.raw``): observed agreement p_a is the mean over units with
    two or more ratings, while the category shares π_k are the mean share of ratings in k
    over every unit with at least one rating, and p_e = Σ π_k².

    Why single-rated units count in π_k: a lone rating carries no agreement, but it is an
    observation of how often labelers use k, and chance agreement is about exactly that;
    leaving it out would estimate π_k from a subset chosen by how many labelers happened
    to see the item. This reproduces Gwet's published figures (0.76117 on Krippendorff's
    2011 4 × 12 data with a single-rated unit). With equal numbers of ratings it is
    exactly Fleiss' formula; the tests check it against statsmodels (not imported here:
    its import alone costs more than the whole computation)."""
    table = as_count_table(units, categories)
    if table.units == 0:
        return undefined("no unit has two or more ratings")
    if len(table.categories) < 2 or np.count_nonzero(table.patterns.sum(axis=0)) < 2:
        return undefined("only one category was used: chance agreement is 1", table.units)
    return _finite_or_undefined(_point(table, "fleiss_kappa"), table, "chance agreement is 1")


def gwet_ac1(units: Units | CountTable, categories: Sequence[Hashable] | None = None) -> Estimate:
    """Gwet's AC1 (Gwet 2008), for any number of raters, missing ratings allowed; the number
    of categories q is ``len(categories)``. p_e = Σ π_k (1 − π_k) / (q − 1) with the same
    convention as :func:`fleiss_kappa`: p_a over units with two or more ratings, π_k over
    every unit with at least one (Gwet 2014; irrCAC ``gwet.ac1.raw`` gives 0.77544 on
    Krippendorff's 2011 4 × 12 data, which the tests reproduce)."""
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
    table = as_count_table(units, categories).pairable_only()
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
    table = as_count_table(units, categories).pairable_only()
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


KappaWeights = Literal["linear", "quadratic"]
KAPPA_WEIGHTS: tuple[str, ...] = ("linear", "quadratic")


def _disagreement_weights(q: int, weights: KappaWeights | None) -> np.ndarray:
    """Disagreement weights on the category index: 1 − I (unweighted), |i − j| or (i − j)²."""
    distance = np.abs(np.subtract.outer(np.arange(q), np.arange(q))).astype(np.float64)
    if weights is None:
        return (distance > 0).astype(np.float64)
    return distance if weights == "linear" else distance**2


def _cohen_from_codes(first: np.ndarray, second: np.ndarray, q: int, weights: KappaWeights | None = None) -> float:
    """Cohen's κ from integer-coded labels: one bincount for the confusion matrix.

    κ_w = 1 − Σ v_ij o_ij / Σ v_ij e_ij with disagreement weights v; for v = 1 − I it is
    (p_o − p_e) / (1 − p_e). Scaling v (e.g. |i − j| / (q − 1), the agreement-weight form
    1 − |i − j| / (q − 1) that SAS prints) leaves κ_w unchanged.
    """
    n = first.size
    observed = np.bincount(first * q + second, minlength=q * q).reshape(q, q) / n
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    disagreement = _disagreement_weights(q, weights)
    chance = float((disagreement * expected).sum())
    if math.isclose(chance, 0.0, abs_tol=1e-15):
        return math.nan
    return 1.0 - float((disagreement * observed).sum()) / chance


def cohen_kappa(
    first: Sequence[Hashable],
    second: Sequence[Hashable],
    categories: Sequence[Hashable] | None = None,
    *,
    weights: KappaWeights | None = None,
) -> Estimate:
    """Cohen's κ for two raters over the same units (Cohen 1960), unweighted or weighted
    (Cohen 1968) with ``weights="linear"`` or ``"quadratic"``.

    Weights are on the category *index*, as scikit-learn, statsmodels and R ``irr`` do: the
    position in ``categories`` when given (give the taxonomy in its order for ordinal
    labels), else in the sorted labels seen; the labels' values are never used as numbers.
    Linear agreement weight 1 − |i − j| / (q − 1), quadratic 1 − (i − j)² / (q − 1)².

    Vectorised (one bincount) because golden sets compute it for every labeler pair and every
    labeler against gold; the tests check it against scikit-learn's ``cohen_kappa_score`` and
    SAS PROC FREQ's published example. Raises ValueError on unequal lengths, a label outside
    ``categories`` or unknown ``weights``.
    """
    if weights is not None and weights not in KAPPA_WEIGHTS:
        raise ValueError(f"weights: must be None, 'linear' or 'quadratic', not {weights!r}")
    if isinstance(categories, str):
        raise ValueError("categories: a sequence of labels, not a string (weights is a keyword argument)")
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
    value = _cohen_from_codes(codes, other, len(labels), weights)
    if not math.isfinite(value):
        return undefined("chance disagreement is 0", len(first))
    return Estimate(value=float(value), units=len(first))
