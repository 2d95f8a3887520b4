"""Labelers over time from the database: the weekly series per labeler and vendor, hidden-gold
misses, the drift flags of the queues page, the window's bad input."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from review.models import HumanLabel, HumanLabelRole
from review.selectors import (
    MAX_WEEKS,
    hidden_gold_misses,
    labeler_drift_flags,
    labeler_quality_series,
    quality_window,
    vendor_quality_series,
)
from tests.review.quality_world import quality_world
from touchstone.errors import LocatedError

pytestmark = pytest.mark.django_db


def test_window_is_the_last_n_iso_weeks_up_to_this_one() -> None:
    window = quality_window(weeks=3, today=date(2026, 11, 29))  # a Sunday
    assert (window.first, window.last) == (date(2026, 11, 9), date(2026, 11, 23))


@pytest.mark.parametrize("weeks", [0, -1, MAX_WEEKS + 1, "4", 2.5, True])
def test_window_refuses_weeks_out_of_range_naming_the_field(weeks) -> None:
    with pytest.raises(LocatedError) as raised:
        quality_window(weeks=weeks)
    assert raised.value.field == "weeks" and str(MAX_WEEKS) in str(raised.value)


def test_the_drifting_labeler_is_flagged_in_the_current_week_only(published, django_assert_max_num_queries) -> None:
    world = quality_world(published)
    window = quality_window(weeks=6)
    with django_assert_max_num_queries(6):
        bob = labeler_quality_series(labeler=world.bob, window=window)
    weeks = bob["weeks"]
    assert len(weeks) == 6 and weeks[-1].start == window.last
    assert [w.drift for w in weeks] == [False] * 5 + [True]
    last = weeks[-1]
    assert (last.accuracy.successes, last.accuracy.n) == (6, 16)
    # the trailing level counts the 4 weeks before, at 14 of 16 each
    assert last.trailing.n == 64 and last.trailing.value == pytest.approx(56 / 64)
    assert bob["latest"] is last
    assert weeks[0].trailing is not None  # weeks before the window feed the trailing level
    # every label of bob's has exactly one peer (k = 2), 20 labels a week
    assert all(w.labels == 20 and w.peer.n == 20 for w in weeks)
    assert weeks[0].peer.successes == 18  # the two gold items where one of the pair is wrong
    assert weeks[0].kappa.value is not None and weeks[0].kappa.ci_low < weeks[0].kappa.value
    # k = 2 with no adjudication: only agreeing pairs have a final label
    assert weeks[0].final.n == 18 and weeks[0].final.successes == 18
    ann = labeler_quality_series(labeler=world.ann, window=window)
    assert not any(w.drift for w in ann["weeks"])


def test_an_adjudicated_label_is_the_final_one(published) -> None:
    world = quality_world(published, weeks=2)
    disputed = HumanLabel.objects.filter(labeler=world.bob, item__external_id="q7").get()
    HumanLabel.objects.create(item=disputed.item, policy_version=published, labeler=world.cy, source="label_studio",
                              role=HumanLabelRole.ADJUDICATION, label=disputed.label, labeled_at=timezone.now())
    week = labeler_quality_series(labeler=world.bob, window=quality_window(weeks=2))["weeks"][0]
    assert week.final.n == 19 and week.final.successes == 19


def test_misses_are_the_newest_wrong_gold_answers(published) -> None:
    world = quality_world(published, weeks=2)
    misses = hidden_gold_misses(labeler=world.bob, limit=5)
    assert len(misses) == 5
    assert all(m.label != m.gold_label for m in misses)
    assert [m.labeled_at for m in misses] == sorted((m.labeled_at for m in misses), reverse=True)
    assert misses[0].labeled_at >= HumanLabel.objects.filter(labeler=world.bob).order_by("-labeled_at")[5].labeled_at


def test_vendor_series_pools_its_labelers(published, django_assert_max_num_queries) -> None:
    world = quality_world(published, weeks=5)
    with django_assert_max_num_queries(6):
        acme = vendor_quality_series(vendor=world.vendor, window=quality_window(weeks=5))
    last = acme["weeks"][-1]
    assert last.labels == 60 and last.accuracy.n == 48
    assert last.accuracy.successes == 14 + 14 + 6
    assert [row["labeler"].external_id for row in acme["labelers"]] == ["ann", "bob", "cy"]
    assert [row["latest"].drift for row in acme["labelers"]] == [False, True, False]


def test_drift_flags_name_the_labelers_whose_latest_gold_week_is_flagged(published) -> None:
    world = quality_world(published, weeks=6)
    flags = labeler_drift_flags()
    assert set(flags) == {world.bob.pk}
    # when bob's drifting week is not his latest gold week any more, the flag goes
    HumanLabel.objects.filter(labeler=world.bob).update(labeled_at=timezone.now() - timedelta(weeks=1))
    assert world.bob.pk not in labeler_drift_flags()


def test_a_labeler_without_labels_gets_empty_weeks(published) -> None:
    world = quality_world(published, weeks=1)
    HumanLabel.objects.filter(labeler=world.cy).delete()
    cy = labeler_quality_series(labeler=world.cy, window=quality_window(weeks=3))
    assert len(cy["weeks"]) == 3 and all(w.labels == 0 for w in cy["weeks"]) and cy["latest"] is None
