"""Labelers over time: weekly quality series and the drift flag (pure: no Django, no I/O).

Conventions
-----------
- Weeks are ISO weeks in UTC: Monday 00:00 to Sunday 24:00 UTC. A label belongs to the week of
  its ``day`` (the UTC date it was made). Weeks are named ``2026-W48`` and keyed by their Monday.
- A *rater* is what a series is grouped by: a labeler, or a vendor (all its labelers' labels).
- Per rater and week, each with its n:
  - **accuracy on hidden gold**: correct / answered over the rater's labels on hidden gold items,
    with the Wilson 95 % score interval (no continuity correction, ``stats.intervals.wilson``);
  - **Cohen's κ on hidden gold** (the rater's labels against the gold labels, unweighted), with
    the *analytic* large-sample interval κ ± z·SE, SE from Fleiss, Cohen & Everitt (1969), the
    one statsmodels' ``cohens_kappa`` reports, clipped to [−1, 1]; undefined (None, with the
    reason) when only one category is used or the SE is 0;
  - **agreement with peers**, over *pairs*: for each of the rater's labels, one pair with every
    label another labeler gave the same item in the same queue; the share of agreeing pairs, with
    the Wilson interval. Pairs sharing a label are not independent, so the interval is a
    readable approximation, narrower than an exact one would be when overlap k > 2;
  - **agreement with the final gold**: the share of the rater's labels that equal the item's
    final label in the review layer (see :func:`final_label`), with the Wilson interval. The
    rater's own label takes part in a majority, so this is higher than the peer agreement.
- **Drift** (:func:`drift`): a week is flagged when its accuracy lies below the rater's own
  trailing level by more than its CI: the *trailing level* is the pooled accuracy (correct /
  answered) over the ``TRAILING_WEEKS`` = 4 calendar weeks before it, used only when those weeks
  hold at least ``MIN_TRAILING_ANSWERS`` = 20 gold answers; the week is flagged when it has at
  least ``MIN_WEEK_ANSWERS`` = 10 gold answers and its Wilson upper bound is strictly below the
  trailing level (the whole interval lies below it). No flag on the first week, without
  trailing data, or with fewer answers; a week exactly at the bound is not flagged.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta

import numpy as np

from review.quality import ReviewLabel
from stats.intervals import normal_quantile, wilson

TRAILING_WEEKS = 4
MIN_TRAILING_ANSWERS = 20
MIN_WEEK_ANSWERS = 10
CONFIDENCE = 0.95
DRIFT_RULE = (f"a week is flagged when it has ≥ {MIN_WEEK_ANSWERS} hidden gold answers and its accuracy's "
              f"Wilson 95 % upper bound is below the trailing level: the pooled accuracy of the previous "
              f"{TRAILING_WEEKS} weeks, when they hold ≥ {MIN_TRAILING_ANSWERS} gold answers")


def week_start(day: date) -> date:
    """The Monday of ``day``'s ISO week."""
    return day - timedelta(days=day.weekday())


def week_name(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True)
class Proportion:
    """successes / n with its Wilson interval; ``value`` None when n = 0."""

    successes: int
    n: int
    value: float | None
    ci_low: float | None
    ci_high: float | None

    @classmethod
    def of(cls, successes: int, n: int) -> Proportion:
        low, high = wilson(successes, n, CONFIDENCE)
        return cls(successes, n, successes / n if n else None, low, high)


@dataclass(frozen=True)
class Kappa:
    """Cohen's κ with its analytic large-sample interval; ``value`` None with ``reason`` when undefined."""

    n: int
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    se: float | None = None
    reason: str | None = None


def cohen_kappa_asymptotic(first: Sequence[Hashable], second: Sequence[Hashable],
                           confidence: float = CONFIDENCE) -> Kappa:
    """Unweighted Cohen's κ and κ ± z·SE with the large-sample SE of Fleiss, Cohen & Everitt
    (1969) (the non-null variance; statsmodels' ``cohens_kappa(...).std_kappa``):

    var = [Σ p_ii (1 − (p_i· + p_·i)(1 − κ))² + (1 − κ)² Σ_{i≠j} p_ij (p_·i + p_j·)²
           − (κ − p_e (1 − κ))²] / (n (1 − p_e)²).

    The interval is clipped to [−1, 1]. Raises ValueError on unequal lengths."""
    if len(first) != len(second):
        raise ValueError(f"the two label lists differ in length: {len(first)} and {len(second)}")
    n = len(first)
    if n == 0:
        return Kappa(0, None, reason="no items")
    categories = sorted(set(first) | set(second), key=str)
    if len(categories) < 2:
        return Kappa(n, None, reason="one category only: chance agreement is 1")
    index = {label: i for i, label in enumerate(categories)}
    q = len(categories)
    codes = np.fromiter((index[label] * q + index[other] for label, other in zip(first, second, strict=True)),
                        dtype=np.int64, count=n)
    p = np.bincount(codes, minlength=q * q).reshape(q, q) / n
    rows, cols = p.sum(axis=1), p.sum(axis=0)
    p_o, p_e = float(np.trace(p)), float(rows @ cols)
    kappa = (p_o - p_e) / (1 - p_e)
    term_a = float((np.diag(p) * (1 - (rows + cols) * (1 - kappa)) ** 2).sum())
    off = p * (cols[:, None] + rows[None, :]) ** 2
    np.fill_diagonal(off, 0.0)
    term_b = (1 - kappa) ** 2 * float(off.sum())
    term_c = (kappa - p_e * (1 - kappa)) ** 2
    variance = (term_a + term_b - term_c) / ((1 - p_e) ** 2 * n)
    se = math.sqrt(max(variance, 0.0))
    if se == 0.0:
        return Kappa(n, kappa, reason="the large-sample SE is 0: no interval")
    z = normal_quantile(confidence)
    return Kappa(n, kappa, max(-1.0, kappa - z * se), min(1.0, kappa + z * se), se)


def final_label(review_labels: Sequence[str], adjudicated: str | None) -> str | None:
    """The item's final label in the review layer: the adjudicator's label when there is one,
    else the label a strict majority (more than half) of at least two valid review labels gave;
    None while the labels are split and not adjudicated (an item a queue escalates under its
    ``no_majority`` rule)."""
    if adjudicated is not None:
        return adjudicated
    if len(review_labels) < 2:
        return None
    label, count = Counter(review_labels).most_common(1)[0]
    return label if 2 * count > len(review_labels) else None


@dataclass(frozen=True)
class Trailing:
    value: float
    correct: int
    n: int
    weeks: int


@dataclass
class Week:
    start: date
    labels: int = 0
    accuracy: Proportion = field(default_factory=lambda: Proportion.of(0, 0))
    kappa: Kappa = field(default_factory=lambda: Kappa(0, None, reason="no items"))
    peer: Proportion = field(default_factory=lambda: Proportion.of(0, 0))
    final: Proportion = field(default_factory=lambda: Proportion.of(0, 0))
    trailing: Trailing | None = None
    drift: bool = False
    drift_reason: str = ""

    @property
    def name(self) -> str:
        return week_name(self.start)

    def as_dict(self) -> dict:
        out = asdict(self)
        out["start"] = self.start.isoformat()
        return {"week": self.name, **out}


def drift(weeks: list[Week]) -> list[Week]:
    """Set ``trailing``, ``drift`` and ``drift_reason`` on consecutive weeks (the module's rule).

    ``weeks`` must be consecutive calendar weeks, oldest first (empty weeks included, as
    :func:`weekly_series` gives them); weeks before the first count as empty. Returns ``weeks``."""
    for i, week in enumerate(weeks):
        if i and weeks[i].start - weeks[i - 1].start != timedelta(days=7):
            raise ValueError(f"weeks must be consecutive: {weeks[i - 1].name} then {week.name}")
        before = weeks[max(0, i - TRAILING_WEEKS):i]
        correct = sum(w.accuracy.successes for w in before)
        answered = sum(w.accuracy.n for w in before)
        week.trailing = (Trailing(correct / answered, correct, answered, len(before))
                         if answered >= MIN_TRAILING_ANSWERS else None)
        week.drift, week.drift_reason = False, ""
        if week.trailing is None or week.accuracy.n < MIN_WEEK_ANSWERS:
            continue
        high = week.accuracy.ci_high
        if high is not None and high < week.trailing.value:
            week.drift = True
            week.drift_reason = (f"{week.name}: accuracy {week.accuracy.value:.2f} on {week.accuracy.n} gold answers "
                                 f"(95 % CI up to {high:.2f}) is below the trailing level {week.trailing.value:.2f} "
                                 f"({week.trailing.n} answers over the previous {TRAILING_WEEKS} weeks)")
    return weeks


def weekly_series(labels: Iterable[ReviewLabel], gold: Mapping[Hashable, str],
                  final: Mapping[tuple[int, Hashable], str], *, first: date | None = None,
                  last: date | None = None, accuracy_only: bool = False) -> dict[Hashable, list[Week]]:
    """Per rater, one :class:`Week` per calendar week from ``first`` (default: the rater's first
    labelled week) to ``last`` (default: their last), empty weeks included, with the drift
    flag set. ``labels`` are every valid review label needed: the raters' own and their peers'
    on the same items (a peer is a label with another ``labeler`` on the same queue and item).
    ``gold`` maps an item to its hidden gold label; ``final`` maps (queue, item) to the final
    label (see :func:`final_label`). Only labels whose rater is not None are measured.
    ``accuracy_only`` leaves κ, peers and final agreement empty (all the drift rule needs)."""
    labels = list(labels)
    units: dict[tuple[int, Hashable], _Unit] = {}
    if not accuracy_only:
        for label in labels:
            unit = units.get((label.queue, label.item))
            if unit is None:
                unit = units[(label.queue, label.item)] = _Unit()
            unit.add(label)
    mine: dict[Hashable, dict[date, list[ReviewLabel]]] = defaultdict(lambda: defaultdict(list))
    mondays: dict[date, date] = {}
    for label in labels:
        if label.rater is not None:
            monday = mondays.get(label.day)
            if monday is None:
                monday = mondays[label.day] = week_start(label.day)
            mine[label.rater][monday].append(label)
    result = {}
    for rater, buckets in mine.items():
        start = week_start(first) if first else min(buckets)
        end = week_start(last) if last else max(buckets)
        weeks = []
        monday = min(start, min(buckets))  # earlier weeks still feed the trailing level
        while monday <= max(end, start):
            weeks.append(_week(monday, buckets.get(monday, []), gold, final, units, accuracy_only))
            monday += timedelta(days=7)
        drift(weeks)
        result[rater] = [week for week in weeks if start <= week.start <= end]
    return result


class _Unit:
    """The labels of one (queue, item), counted so that a label's peer pairs are O(1)."""

    __slots__ = ("by_label", "by_labeler", "by_labeler_label", "total")

    def __init__(self) -> None:
        self.total = 0
        self.by_label: Counter = Counter()
        self.by_labeler: Counter = Counter()
        self.by_labeler_label: Counter = Counter()

    def add(self, label: ReviewLabel) -> None:
        self.total += 1
        self.by_label[label.label] += 1
        self.by_labeler[label.labeler] += 1
        self.by_labeler_label[(label.labeler, label.label)] += 1

    def pairs(self, label: ReviewLabel) -> tuple[int, int]:
        """(agreeing, all) pairs of ``label`` with the other labelers' labels in this unit."""
        return (self.by_label[label.label] - self.by_labeler_label[(label.labeler, label.label)],
                self.total - self.by_labeler[label.labeler])


def _week(monday: date, given: list[ReviewLabel], gold: Mapping[Hashable, str],
          final: Mapping[tuple[int, Hashable], str], units: Mapping[tuple[int, Hashable], _Unit],
          accuracy_only: bool) -> Week:
    answered = [(label.label, gold[label.item]) for label in given if label.item in gold]
    accuracy = Proportion.of(sum(mine == truth for mine, truth in answered), len(answered))
    if accuracy_only:
        return Week(start=monday, labels=len(given), accuracy=accuracy)
    agreeing = pairs = 0
    for label in given:
        agree, total = units[(label.queue, label.item)].pairs(label)
        agreeing += agree
        pairs += total
    finals = [final[(label.queue, label.item)] == label.label for label in given if (label.queue, label.item) in final]
    return Week(start=monday, labels=len(given), accuracy=accuracy,
                kappa=cohen_kappa_asymptotic([a for a, _ in answered], [t for _, t in answered]),
                peer=Proportion.of(agreeing, pairs), final=Proportion.of(sum(finals), len(finals)))


def latest_gold_week(weeks: Sequence[Week]) -> Week | None:
    """The most recent week in which the rater answered hidden gold (what the queues page flags)."""
    return next((week for week in reversed(weeks) if week.accuracy.n), None)
