"""Alert rules (pure, and stored once per cycle and rule), the prompt-change overlap (both
versions on the same sample), the beat tick and the Celery task chain (eager)."""

from __future__ import annotations

import datetime

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from monitoring.models import Alert, Cycle, CycleRun, CycleState
from monitoring.rules import CycleFacts, Point, evaluate
from monitoring.services.alerts import cycle_alerts_evaluate
from monitoring.services.monitors import monitor_backfill, monitors_tick
from prevalence.models import PrevalenceEstimate
from runs.models import LabelingRun
from tests.monitoring.conftest import DAYS
from tests.monitoring.test_cycles import step, until_done  # noqa: F401 - the fixture

RISE = {("insult", "hajek"): Point(0.34, 0.2, 0.5)}


def test_rules_fire_only_past_their_thresholds():
    facts = CycleFacts(points=RISE, previous=[{("insult", "hajek"): Point(0.2, 0.1, 0.3)}] * 2 +
                       [{("insult", "hajek"): Point(0.05, 0.0, 0.1)}], agreement=0.8, agreement_n=10,
                       vendor_accuracy={"acme": 0.6, "other": None})
    above = {"name": "a", "kind": "estimate_above", "label": "insult", "threshold": 0.3}
    assert evaluate(above, facts, default_estimator="hajek").value == 0.34
    assert evaluate({**above, "threshold": 0.34}, facts, default_estimator="hajek") is None  # not above
    assert evaluate({**above, "label": "threat"}, facts, default_estimator="hajek") is None
    trailing = {"name": "t", "kind": "ci_lower_above_trailing", "label": "insult", "window": 2}
    firing = evaluate(trailing, facts, default_estimator="hajek")
    assert firing is None  # 0.2 is not above the mean of the last two (0.2)
    firing = evaluate({**trailing, "window": 3}, facts, default_estimator="hajek")
    assert firing.threshold == pytest.approx(0.15) and "last 3 cycles" in firing.message
    assert evaluate(trailing, CycleFacts(points=RISE), default_estimator="hajek") is None  # no history
    agreement = {"name": "g", "kind": "agreement_below", "threshold": 0.85}
    assert "80.0% of 10 audited items" in evaluate(agreement, facts, default_estimator="hajek").message
    assert evaluate({**agreement, "threshold": 0.8}, facts, default_estimator="hajek") is None
    vendor = {"name": "v", "kind": "vendor_gold_accuracy_below", "vendor": "acme", "threshold": 0.7}
    assert evaluate(vendor, facts, default_estimator="hajek").value == 0.6
    assert evaluate({**vendor, "vendor": "other"}, facts, default_estimator="hajek") is None


@pytest.mark.django_db
def test_alerts_are_stored_once_per_cycle_and_rule(world, ops, step):  # noqa: F811
    make, people = world
    people.instant = True
    monitor = make()
    monitor.spec["alerts"].append({"name": "some", "kind": "estimate_above", "label": "insult", "estimator": "ppi++",
                                   "threshold": 0.1})  # 20-33 % insults: fires on most cycles
    type(monitor).objects.filter(pk=monitor.pk).update(spec=monitor.spec)
    monitor.refresh_from_db()
    made = monitor_backfill(monitor=monitor, date_from=DAYS[0], date_to=DAYS[4], acting_user=ops, enqueue=False)
    for cycle in made.created:
        until_done(step, cycle)
    alerts = Alert.objects.filter(monitor=monitor)
    assert alerts.filter(rule="some").exists()
    for cycle in made.created:  # each level rule fired exactly on the cycles whose estimate is above its threshold
        for rule, estimator, threshold in (("too-high", "hajek", 0.25), ("some", "ppi++", 0.1)):
            estimate = PrevalenceEstimate.objects.get(
                run__name__startswith=f"mon-{monitor.name}-{cycle.partition_date}", label="insult",
                estimator=estimator).estimate
            fired = alerts.filter(cycle=cycle, rule=rule)
            assert fired.count() == (1 if estimate > threshold else 0), (cycle, rule, estimate)
            assert all(a.value == estimate and a.threshold == threshold for a in fired)
    assert not alerts.filter(rule="rising", cycle__partition_date=DAYS[0]).exists()  # no trailing level yet
    cycle = Cycle.objects.get(monitor=monitor, partition_date=DAYS[4])
    before = alerts.count()
    with transaction.atomic():
        assert cycle_alerts_evaluate(cycle=cycle) == []  # evaluated again: nothing new
    assert alerts.count() == before
    existing = alerts.filter(cycle=cycle).first()
    with pytest.raises(IntegrityError), transaction.atomic():
        Alert.objects.create(monitor=monitor, cycle=cycle, rule=existing.rule, kind=existing.kind, value=1,
                             threshold=0, message="again")
    assert existing.status == "pending" and existing.attempts == 0 and existing.acknowledged_by is None


@pytest.mark.django_db
def test_a_new_policy_version_is_estimated_beside_the_old_in_the_overlap(world, ops, step, published, author,  # noqa: F811
                                                                          approver):
    from policies.services import policy_version_create_draft, policy_version_publish, policy_version_submit
    from review.models import ReviewQueue, Vendor

    make, people = world
    people.instant = True
    v2 = policy_version_create_draft(from_version=published, acting_user=author)
    policy_version_submit(version=v2, acting_user=author)
    policy_version_publish(version=v2, acting_user=approver)  # published today
    v2.refresh_from_db()
    # overlap: partitions less than this many days from the publication (Nov 3 in, Nov 1 out)
    overlap = (v2.published_at.date() - DAYS[2]).days + 1
    from tests.monitoring.conftest import MONITOR_YAML

    monitor = make(body_text=MONITOR_YAML.format(name="ov", folder=make.folder, deadline=48, max_attempts=2)
                   .replace("overlap_days: 3", f"overlap_days: {overlap}"))
    ReviewQueue.objects.create(name="acme-harassment-v2", policy_version=v2, vendor=Vendor.objects.get(name="acme"))
    made = monitor_backfill(monitor=monitor, date_from=DAYS[0], date_to=DAYS[0], acting_user=ops, enqueue=False)
    made2 = monitor_backfill(monitor=monitor, date_from=DAYS[2], date_to=DAYS[2], acting_user=ops, enqueue=False)
    outside, inside = made.created[0], made2.created[0]
    until_done(step, outside)
    until_done(step, inside)
    assert list(CycleRun.objects.filter(cycle=outside).values_list("policy_version__number", "is_primary")) == [
        (2, True)]
    runs = CycleRun.objects.filter(cycle=inside).order_by("-is_primary")
    assert [(r.policy_version.number, r.is_primary) for r in runs] == [(2, True), (1, False)]
    assert {r.run.sample_id for r in runs} == {inside.sample_id}  # the same sample, labelled twice
    for cr in runs:
        estimates = PrevalenceEstimate.objects.filter(run=cr.run)
        assert estimates.count() == 4 and {e.policy_version.number for e in estimates} == {cr.policy_version.number}
    assert LabelingRun.objects.filter(sample=inside.sample).count() == 2
    assert {q for q, _ in people.pushes} == {"acme-harassment", "acme-harassment-v2"}


@pytest.mark.django_db
def test_the_tick_makes_due_cycles_and_the_task_chain_runs_them(world, ops, settings, monkeypatch,
                                                                django_capture_on_commit_callbacks):
    from touchstone.celery import app

    assert app.conf.beat_schedule["monitor-tick"]["task"] == "monitoring.tasks.monitor_tick"
    make, people = world
    people.instant = True
    monitor = make()
    now = datetime.datetime.combine(DAYS[2], datetime.time(6), tzinfo=datetime.UTC)
    tick = monitors_tick(now=now)  # the newest due partition only: Nov 2 (older ones need a backfill)
    assert [Cycle.objects.get(pk=c).partition_date for c in tick.created] == [DAYS[1]]
    assert monitors_tick(now=now).created == []
    later = now + datetime.timedelta(days=2)
    assert sorted(Cycle.objects.get(pk=c).partition_date for c in monitors_tick(now=later).created) == [
        DAYS[2], DAYS[3]]
    settings.MONITOR_POLL_SECONDS = 0  # eager: the chain re-queues itself at once
    from monitoring.tasks import cycle_advance

    cycle = Cycle.objects.get(monitor=monitor, partition_date=DAYS[1])
    with django_capture_on_commit_callbacks(execute=True):
        cycle_advance.delay(cycle.pk)
    for _ in range(3):  # the run's chunks ran on commit; its finish is seen by the next advance
        with django_capture_on_commit_callbacks(execute=True):
            cycle_advance.delay(cycle.pk)
    cycle.refresh_from_db()
    assert cycle.state == CycleState.DONE and cycle.lease_owner == "" and cycle.next_attempt_at is None
    stalled = Cycle.objects.filter(monitor=monitor).exclude(pk=cycle.pk)
    stalled.update(next_attempt_at=timezone.now() - datetime.timedelta(hours=1))
    lost = set(stalled.values_list("pk", flat=True))  # their advances were lost
    assert set(monitors_tick().requeued) == lost


@pytest.mark.django_db
def test_the_vendor_rule_reads_the_vendors_gold_accuracy(world, ops, step):  # noqa: F811
    from monitoring.services.alerts import cycle_facts

    make, people = world
    people.instant = True
    monitor = make()
    monitor.spec["alerts"].append({"name": "vendor", "kind": "vendor_gold_accuracy_below", "vendor": "acme",
                                   "threshold": 0.9})
    type(monitor).objects.filter(pk=monitor.pk).update(spec=monitor.spec)
    cycle = monitor_backfill(monitor=monitor, date_from=DAYS[0], date_to=DAYS[0], acting_user=ops,
                             enqueue=False).created[0]
    until_done(step, cycle)
    facts = cycle_facts(cycle=cycle)
    assert facts.vendor_accuracy.get("acme") is None  # no hidden gold answered: no accuracy, no alert
    assert not Alert.objects.filter(cycle=cycle, rule="vendor").exists()
    assert facts.points[("insult", "hajek")].ci_low is not None and facts.agreement_n > 0
