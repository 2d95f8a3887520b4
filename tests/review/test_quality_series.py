"""The weekly series and the drift rule (review.quality_series), on hand-built data; κ's
interval against statsmodels."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.inter_rater import cohens_kappa
from statsmodels.stats.proportion import proportion_confint

from review.quality import ReviewLabel
from review.quality_series import (
    MIN_TRAILING_ANSWERS,
    MIN_WEEK_ANSWERS,
    Proportion,
    Week,
    cohen_kappa_asymptotic,
    drift,
    final_label,
    latest_gold_week,
    week_name,
    week_start,
    weekly_series,
)

MONDAY = date(2026, 10, 5)


def weeks_of(*answers: tuple[int, int]) -> list[Week]:
    """Consecutive weeks from MONDAY with (correct, answered) hidden gold each."""
    return [Week(start=MONDAY + timedelta(weeks=i), accuracy=Proportion.of(c, n)) for i, (c, n) in enumerate(answers)]


def test_iso_weeks_start_on_monday_and_are_named_by_iso_year() -> None:
    assert week_start(date(2026, 11, 29)) == date(2026, 11, 23)  # a Sunday belongs to the week before
    assert week_start(date(2026, 11, 30)) == date(2026, 11, 30)
    assert week_name(date(2026, 11, 30)) == "2026-W49"
    assert week_name(week_start(date(2027, 1, 1))) == "2026-W53"  # 2026 has 53 ISO weeks
    assert week_name(week_start(date(2025, 12, 31))) == "2026-W01"


def test_a_week_whose_interval_lies_below_the_trailing_level_is_flagged() -> None:
    weeks = drift(weeks_of((9, 10), (9, 10), (9, 10), (9, 10), (4, 10)))
    last = weeks[-1]
    assert last.trailing.value == pytest.approx(0.9) and last.trailing.n == 40
    assert last.accuracy.ci_high < 0.9 and last.drift
    assert "2026-W45" in last.drift_reason and "0.40" in last.drift_reason
    assert [w.drift for w in weeks[:-1]] == [False] * 4


def test_the_first_week_and_weeks_without_enough_trailing_answers_are_never_flagged() -> None:
    weeks = drift(weeks_of((0, 50)))
    assert weeks[0].trailing is None and not weeks[0].drift
    # 19 trailing answers: one short of the minimum
    weeks = drift(weeks_of((19, 19), (0, 30)))
    assert MIN_TRAILING_ANSWERS == 20 and weeks[1].trailing is None and not weeks[1].drift
    weeks = drift(weeks_of((20, 20), (0, 30)))
    assert weeks[1].trailing.n == 20 and weeks[1].drift


def test_a_week_with_too_few_answers_is_not_flagged() -> None:
    assert MIN_WEEK_ANSWERS == 10
    assert not drift(weeks_of((40, 40), (0, 9)))[1].drift
    assert drift(weeks_of((40, 40), (0, 10)))[1].drift


def test_empty_weeks_count_in_the_window_and_old_weeks_fall_out_of_it() -> None:
    # 4 calendar weeks back: the empty weeks are part of the window, so the answers 5 weeks ago are not
    weeks = drift(weeks_of((40, 40), (0, 0), (0, 0), (0, 0), (0, 0), (0, 20)))
    assert weeks[5].trailing is None and not weeks[5].drift
    weeks = drift(weeks_of((40, 40), (0, 0), (0, 0), (0, 0), (0, 20)))
    assert weeks[4].trailing.n == 40 and weeks[4].trailing.weeks == 4 and weeks[4].drift
    assert not weeks[1].drift and weeks[1].trailing.value == 1.0  # an empty week is never flagged


def test_exactly_at_the_bound_is_not_flagged_just_below_is() -> None:
    def week(high: float) -> list[Week]:
        weeks = weeks_of((15, 20))
        weeks.append(Week(start=MONDAY + timedelta(weeks=1), accuracy=Proportion(3, 10, 0.3, 0.1, high)))
        return drift(weeks)

    assert week(0.75)[1].trailing.value == 0.75
    assert not week(0.75)[1].drift
    assert week(np.nextafter(0.75, 0))[1].drift


def test_drift_refuses_weeks_that_are_not_consecutive() -> None:
    weeks = [Week(start=MONDAY), Week(start=MONDAY + timedelta(weeks=2))]
    with pytest.raises(ValueError, match="consecutive"):
        drift(weeks)


def test_proportion_is_wilson_without_continuity_correction() -> None:
    got = Proportion.of(7, 20)
    low, high = proportion_confint(7, 20, alpha=0.05, method="wilson")
    assert got.value == 0.35 and got.ci_low == pytest.approx(low, abs=1e-12) and got.ci_high == pytest.approx(high)
    assert Proportion.of(0, 0).value is None and Proportion.of(0, 0).ci_high is None


@pytest.mark.parametrize("seed", range(5))
def test_kappa_interval_matches_statsmodels_asymptotic_se(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.choice(["none", "insult", "threat"], size=60, p=[0.5, 0.3, 0.2])
    given = np.where(rng.random(60) < 0.7, truth, rng.choice(["none", "insult", "threat"], size=60))
    got = cohen_kappa_asymptotic(list(given), list(truth))
    categories = ["insult", "none", "threat"]
    table = np.zeros((3, 3))
    for a, b in zip(given, truth, strict=True):
        table[categories.index(a), categories.index(b)] += 1
    ref = cohens_kappa(table)
    assert got.value == pytest.approx(ref.kappa, abs=1e-12)
    assert got.se == pytest.approx(ref.std_kappa, rel=1e-10)
    assert got.ci_low == pytest.approx(max(-1, ref.kappa_low), abs=1e-12)
    assert got.ci_high == pytest.approx(min(1, ref.kappa_upp), abs=1e-12)


def test_kappa_undefined_cases_say_why() -> None:
    assert cohen_kappa_asymptotic([], []).value is None
    one = cohen_kappa_asymptotic(["ok", "ok"], ["ok", "ok"])
    assert one.value is None and "one category" in one.reason
    perfect = cohen_kappa_asymptotic(["a", "b", "a"], ["a", "b", "a"])
    assert perfect.value == 1.0 and perfect.ci_low is None and "SE is 0" in perfect.reason
    with pytest.raises(ValueError):
        cohen_kappa_asymptotic(["a"], [])


def test_final_label_is_the_adjudicated_one_else_a_strict_majority() -> None:
    assert final_label(["a", "b"], "b") == "b"
    assert final_label(["a", "a", "b"], None) == "a"
    assert final_label(["a", "b"], None) is None
    assert final_label(["a"], None) is None
    assert final_label(["a", "a"], None) == "a"


def label(labeler: str, item: int, value: str, day: date, queue: int = 1, rater: str | None = "same") -> ReviewLabel:
    return ReviewLabel(rater=labeler if rater == "same" else rater, labeler=labeler, queue=queue, item=item,
                       label=value, seconds=None, day=day)


def test_weekly_series_counts_gold_peers_and_final_per_iso_week() -> None:
    sunday, monday = date(2026, 11, 29), date(2026, 11, 30)
    labels = [label("ann", 1, "a", sunday), label("bob", 1, "a", sunday),
              label("ann", 2, "b", monday), label("bob", 2, "a", monday), label("cy", 2, "a", monday),
              label("ann", 3, "a", monday), label("bob", 3, "a", monday, queue=2)]  # another queue: not a peer
    gold = {1: "a", 2: "a"}
    final = {(1, 1): "a", (1, 2): "a"}
    series = weekly_series(labels, gold, final)
    ann = series["ann"]
    assert [w.name for w in ann] == ["2026-W48", "2026-W49"]
    first, second = ann
    assert (first.accuracy.successes, first.accuracy.n) == (1, 1)
    assert (second.accuracy.successes, second.accuracy.n) == (0, 1)
    assert (first.peer.successes, first.peer.n) == (1, 1)
    assert (second.peer.successes, second.peer.n) == (0, 2)  # item 2: bob and cy disagree with ann
    assert (second.final.successes, second.final.n) == (0, 1)
    assert series["cy"][0].peer.n == 2 and series["cy"][0].peer.successes == 1
    assert second.labels == 2


def test_weekly_series_fills_empty_weeks_and_windows_keep_the_trailing_history() -> None:
    start = date(2026, 9, 7)
    labels = [label("ann", 100 * w + i, "a" if (w < 4 or i < 3) else "b", start + timedelta(weeks=w))
              for w in (0, 1, 2, 3, 6) for i in range(10)]
    gold = {100 * w + i: "a" for w in range(7) for i in range(10)}
    weeks = weekly_series(labels, gold, {})["ann"]
    assert [w.labels for w in weeks] == [10, 10, 10, 10, 0, 0, 10]
    assert weeks[4].accuracy.n == 0 and weeks[4].kappa.value is None and not weeks[4].drift
    assert weeks[6].trailing.n == 20 and weeks[6].drift  # weeks 2, 3 (and 4, 5 empty)
    assert latest_gold_week(weeks) is weeks[6]
    window = weekly_series(labels, gold, {}, first=start + timedelta(weeks=5), last=start + timedelta(weeks=7))["ann"]
    assert [w.start for w in window] == [start + timedelta(weeks=k) for k in (5, 6, 7)]
    assert window[1].drift and window[2].labels == 0
    assert latest_gold_week([Week(start=MONDAY)]) is None


def test_vendor_raters_pool_their_labelers_but_peers_are_other_people() -> None:
    day = date(2026, 11, 2)
    labels = [label("ann", 1, "a", day, rater="acme"), label("bob", 1, "b", day, rater="acme"),
              label("ann", 2, "a", day, rater="acme")]
    acme = weekly_series(labels, {1: "a", 2: "a"}, {})["acme"][0]
    assert acme.labels == 3 and (acme.accuracy.successes, acme.accuracy.n) == (2, 3)
    assert (acme.peer.successes, acme.peer.n) == (0, 2)  # ann–bob and bob–ann on item 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcd"), st.integers(0, 11), st.sampled_from("xyz"), st.integers(0, 20),
                          st.integers(1, 2)), min_size=1, max_size=60, unique_by=lambda t: (t[0], t[1], t[4])))
def test_weekly_counts_add_up_to_the_all_time_quality_of_review_quality(rows) -> None:
    """Cross-check against the existing all-time measures (review.quality.rater_quality, which
    scores κ with stats.agreement.cohen_kappa): the weeks' counts sum to its totals, and on a
    single week κ is the same."""
    from review.quality import rater_quality

    labels = [ReviewLabel(rater=who, labeler=who, queue=queue, item=item, label=value, seconds=None,
                          day=MONDAY + timedelta(days=day)) for who, item, value, day, queue in rows]
    gold = {item: "xyz"[item % 3] for item in range(0, 12, 2)}
    weekly = weekly_series(labels, gold, {})
    overall = rater_quality(labels, gold)
    for rater, weeks in weekly.items():
        assert sum(w.labels for w in weeks) == overall[rater]["labels"]
        assert sum(w.accuracy.n for w in weeks) == overall[rater]["gold_items"]
        assert sum(w.accuracy.successes for w in weeks) == overall[rater]["gold_correct"]
        assert sum(w.peer.n for w in weeks) == overall[rater]["peer_pairs"]
    one_week = weekly_series([replace(label, day=MONDAY) for label in labels], gold, {})
    for rater, (week,) in one_week.items():
        expected = overall[rater]["kappa"]
        if expected is None:
            assert week.kappa.value is None
        else:
            assert week.kappa.value == pytest.approx(expected, abs=1e-12)
