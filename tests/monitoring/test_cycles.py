"""Cycles advanced one stage at a time by the service (tasks eager, the simulator as the LLM):
end to end, idempotency, resume after a crash, endpoint down, Label Studio down, deadline."""

from __future__ import annotations

import datetime

import pytest
from celery.exceptions import Retry
from django.utils import timezone

from content.models import Sample
from monitoring.models import Alert, Cycle, CycleRun, CycleState
from monitoring.selectors import monitor_series
from monitoring.services.cycles import cycle_advance, cycle_claim, cycle_run_to_rest, sample_name
from monitoring.services.monitors import monitor_backfill, monitors_tick
from prevalence.models import PrevalenceEstimate
from runs.models import LabelingRun, LLMEndpoint, RunStatus
from runs.services.work import EndpointUnavailable
from tests.monitoring.conftest import DAYS

pytestmark = pytest.mark.django_db
DAY = DAYS[0]


@pytest.fixture
def step(django_capture_on_commit_callbacks):
    """Advance once, running what the stage queued on commit (the run's chunks) in-process."""

    def advance(cycle: Cycle):
        result = None
        try:
            with django_capture_on_commit_callbacks(execute=True):
                result = cycle_advance(cycle_id=cycle.pk)
        except (EndpointUnavailable, Retry):  # a chunk left calls pending: the run's row says why
            pass
        return result

    return advance


def until_done(step, cycle: Cycle, limit: int = 12) -> Cycle:
    for _ in range(limit):
        cycle.refresh_from_db()
        if cycle.state in (CycleState.DONE, CycleState.FAILED):
            break
        step(cycle)
    cycle.refresh_from_db()
    assert cycle.state == CycleState.DONE, cycle.shown_state
    return cycle


def until_reviewing(step, cycle: Cycle, limit: int = 6):
    for _ in range(limit):
        result = step(cycle)
        if result.stage in (CycleState.REVIEWING, CycleState.ESTIMATING, CycleState.DONE):
            return result
    raise AssertionError(f"still {result}")


def new_cycle(monitor, ops, day=DAY) -> Cycle:
    made = monitor_backfill(monitor=monitor, date_from=day, date_to=day, acting_user=ops, enqueue=False)
    return made.created[0]


def made_counts(cycle: Cycle) -> tuple[int, int, int, int]:
    return (Sample.objects.filter(name=sample_name(cycle)).count(),
            LabelingRun.objects.filter(name__startswith=f"mon-{cycle.monitor.name}-{cycle.partition_date}").count(),
            PrevalenceEstimate.objects.filter(sample__name=sample_name(cycle)).count(),
            Alert.objects.filter(cycle=cycle).count())


def test_a_cycle_goes_through_every_stage_once(world, ops, step):
    make, people = world
    monitor = make()
    cycle = new_cycle(monitor, ops)
    assert cycle.state == CycleState.PENDING and cycle.seed > 0
    result = step(cycle)
    assert (result.state, result.delay) == (CycleState.LABELING, 0)
    cycle.refresh_from_db()
    assert cycle.sample.size == 30 and cycle.drawn_at is not None and cycle.sample.frame_size == 60
    result = step(cycle)  # creates and starts the run; its chunks run eagerly
    run = LabelingRun.objects.get(name=f"mon-{monitor.name}-{DAY}-v1")
    assert run.status == RunStatus.FINISHED and run.audit_share == 0.3 and run.audit_seed == cycle.seed
    if result.state == CycleState.LABELING:
        result = step(cycle)
    assert result.state == CycleState.REVIEWING
    result = step(cycle)  # pushes the routed items, then waits for people
    routed = list(run.decisions.filter(outcome="human_review").values_list("item_id", flat=True))
    assert routed and people.pushes == [("acme-harassment", sorted(routed))]
    assert result.state == CycleState.WAITING and result.reason.startswith(f"0 of {len(routed)} audit labels in; "
                                                                          "deadline 20")
    people.answer(routed[: len(routed) // 2], policy_version=run.prompt_version.policy_version)
    result = step(cycle)
    assert result.reason.startswith(f"{len(routed) // 2} of {len(routed)} audit labels in")
    assert len(people.pushes) == 1  # pushed once
    people.answer(routed, policy_version=run.prompt_version.policy_version)
    assert step(cycle).state == CycleState.ESTIMATING
    result = step(cycle)
    assert (result.state, result.delay) == (CycleState.DONE, None)
    cycle.refresh_from_db()
    estimates = PrevalenceEstimate.objects.filter(run=run)
    assert estimates.count() == 4  # (insult, any violation) × (hajek, ppi++)
    cr = CycleRun.objects.get(cycle=cycle)
    assert set(cr.estimates.all()) == set(estimates) and cr.agreement["audit"]["n"] > 0
    assert cycle.cost > 0 and cycle.input_tokens > 0 and cycle.finished_at and not cycle.estimated_with_pending
    assert not cycle_advance(cycle_id=cycle.pk).claimed  # done: nothing to claim
    series = monitor_series(monitor=monitor)
    assert len(series) == 4 and {(p["label"], p["estimator"]) for p in series} == {
        ("insult", "hajek"), ("insult", "ppi++"), ("any violation", "hajek"), ("any violation", "ppi++")}
    ppi = next(p for p in series if p["estimator"] == "ppi++" and p["label"] == "insult")
    assert ppi["primary"] and ppi["policy_version"] == 1 and ppi["ci"][0] <= ppi["estimate"] <= ppi["ci"][1]
    assert ppi["human_only"]["estimate"] is not None and ppi["agreement"]["n"] > 0
    assert made_counts(cycle) == (1, 1, 4, Alert.objects.filter(cycle=cycle).count())


def test_every_stage_run_twice_makes_one_sample_run_and_estimate_set(world, ops, step,
                                                                     django_capture_on_commit_callbacks):
    make, people = world
    people.instant = True
    monitor = make()
    cycle = new_cycle(monitor, ops)
    with django_capture_on_commit_callbacks(execute=True):
        rest = cycle_run_to_rest(cycle_id=cycle.pk)  # draws, starts the run: its chunks run on commit
    assert rest.state == CycleState.LABELING and rest.delay > 0
    until_done(step, cycle)
    first = made_counts(cycle)
    assert first[:3] == (1, 1, 4)
    for stage in (CycleState.DRAWING, CycleState.LABELING, CycleState.REVIEWING, CycleState.ESTIMATING):
        # a redelivered message, or a worker that died after the work and before the state change
        Cycle.objects.filter(pk=cycle.pk).update(state=stage, stage=stage)
        until_done(step, cycle)
        assert made_counts(cycle) == first, stage
    assert len(people.pushes) == 1 or all(p == people.pushes[0] for p in people.pushes)


def test_a_crash_mid_stage_is_resumed_from_what_it_made(world, ops, step, settings):
    make, people = world
    people.instant = True
    monitor = make()
    cycle = new_cycle(monitor, ops)
    # A worker claimed it and was killed: its lease holds others off until it runs out.
    assert cycle_claim(cycle_id=cycle.pk, owner="killed-worker")
    assert not step(cycle).claimed
    assert monitors_tick().requeued == []  # its lease has not run out
    Cycle.objects.filter(pk=cycle.pk).update(lease_until=timezone.now() - datetime.timedelta(seconds=1),
                                             next_attempt_at=timezone.now() - datetime.timedelta(hours=1))
    assert monitors_tick().requeued == [cycle.pk]
    # It had drawn the sample but not recorded it: the next attempt finds it by name.
    from monitoring.services.cycles import _draw

    sample = _draw(cycle, sample_name(cycle))
    assert step(cycle).state == CycleState.LABELING
    cycle.refresh_from_db()
    assert cycle.sample == sample and cycle.advances >= 1
    until_done(step, cycle)
    assert made_counts(cycle)[:3] == (1, 1, 4)


def test_endpoint_down_waits_with_its_reason_then_completes(world, ops, step, settings):
    from demo import devstack

    make, people = world
    people.instant = True
    monitor = make(max_attempts=1)
    endpoint = LLMEndpoint.objects.get(name="sim")
    good_url = endpoint.base_url
    LLMEndpoint.objects.filter(pk=endpoint.pk).update(base_url=f"http://127.0.0.1:{devstack.free_port()}/v1")
    cycle = new_cycle(monitor, ops)
    step(cycle)
    step(cycle)  # the run starts; every call fails to connect
    result = step(cycle)
    assert result.state == CycleState.WAITING and result.stage == CycleState.LABELING
    assert result.reason.startswith("LLM endpoint sim unreachable since 20") and "calls pending" in result.reason
    cycle.refresh_from_db()
    assert cycle.waiting_since is not None
    # The endpoint is back; the run's chunks are re-queued (by the retry, the watchdog or the cycle).
    LLMEndpoint.objects.filter(pk=endpoint.pk).update(base_url=good_url)
    settings.MONITOR_RUN_STALE_SECONDS = 0
    until_done(step, cycle)
    assert cycle.state == CycleState.DONE and not cycle.reason and cycle.waiting_since is None
    assert made_counts(cycle)[:3] == (1, 1, 4)


def test_label_studio_down_waits_then_pushes(world, ops, step):
    make, people = world
    monitor = make()
    cycle = new_cycle(monitor, ops)
    people.down = True
    until_reviewing(step, cycle)
    result = step(cycle)
    assert result.state == CycleState.WAITING and result.stage == CycleState.REVIEWING
    assert result.reason.startswith("Label Studio down: Label Studio at") and "wait to be pushed" in result.reason
    people.down, people.instant = False, True
    assert step(cycle).state == CycleState.ESTIMATING and len(people.pushes) == 1


def test_the_label_deadline_estimates_with_pending_items(world, ops, step):
    make, people = world
    monitor = make(deadline=1)
    cycle = new_cycle(monitor, ops)
    until_reviewing(step, cycle)
    result = step(cycle)
    assert result.state == CycleState.WAITING and "audit labels in; deadline" in result.reason
    assert 0 < result.delay <= 3600
    run = LabelingRun.objects.get(name__startswith=f"mon-{monitor.name}-")
    routed = list(run.decisions.filter(outcome="human_review").order_by("item_id").values_list("item_id", flat=True))
    people.answer(routed[: len(routed) * 2 // 3], policy_version=run.prompt_version.policy_version)
    assert step(cycle).state == CycleState.WAITING
    Cycle.objects.filter(pk=cycle.pk).update(label_deadline_at=timezone.now() - datetime.timedelta(seconds=1))
    assert step(cycle).state == CycleState.ESTIMATING
    assert step(cycle).state == CycleState.DONE
    cycle.refresh_from_db()
    assert cycle.estimated_with_pending and cycle.labels_in < cycle.audit_items
    pending = set(PrevalenceEstimate.objects.filter(run=run).values_list("n_pending", flat=True))
    assert pending == {len(routed) - len(routed) * 2 // 3}


def test_a_paused_monitor_holds_its_cycles(world, ops, step):
    from monitoring.services.monitors import monitor_pause

    make, people = world
    monitor = make()
    cycle = new_cycle(monitor, ops)
    monitor_pause(monitor=monitor, paused=True, acting_user=ops)
    assert not step(cycle).claimed
    monitor_pause(monitor=monitor, paused=False, acting_user=ops)
    assert step(cycle).claimed


def test_a_missing_partition_waits_and_an_unexpected_error_is_shown(world, ops, step, monkeypatch):
    make, _ = world
    monitor = make()
    late = DAYS[-1] + datetime.timedelta(days=1)  # no file for it yet
    cycle = new_cycle(monitor, ops, day=late)
    result = step(cycle)
    assert result.state == CycleState.WAITING and result.stage == CycleState.DRAWING
    assert result.reason == (f"no file matches {make.folder}/chats-{late}.csv yet "
                             f"(the partition of {late} is not written)")
    assert not Sample.objects.filter(name=sample_name(cycle)).exists()
    from monitoring.services import cycles

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setitem(cycles.STAGES, CycleState.DRAWING, broken)
    result = step(cycle)
    assert result.state == CycleState.WAITING and result.reason == (
        "unexpected error at drawing, retrying: ZeroDivisionError: a bug") and result.delay > 0


def test_a_content_source_monitor_draws_the_items_of_its_date(world, ops, step):
    from content.models import ContentItem
    from simulator.engine import text_sha256
    from tests.monitoring.conftest import MONITOR_YAML, ROWS, text

    make, people = world
    people.instant = True
    ContentItem.objects.bulk_create(
        ContentItem(source="chats", external_id=f"{day}-{i}", parts={"text": text(day, i)}, target_part="text",
                    content_sha256=text_sha256(text(day, i)), metadata={"day": day.isoformat()})
        for day in DAYS[:2] for i in range(ROWS))
    body = MONITOR_YAML.format(name="content-mon", folder="x", deadline=48, max_attempts=2).replace(
        "  glob: x/chats-{date}.csv\n  parts: [text]\n", "  content: {source: chats, date_field: day}\n")
    monitor = make("content-mon", body_text=body)
    waiting = new_cycle(monitor, ops, day=DAYS[2])
    assert step(waiting).reason == "no content of source chats with day = 2026-11-03 imported yet"
    cycle = new_cycle(monitor, ops, day=DAYS[1])
    until_done(step, cycle)
    members = set(cycle.sample.members.values_list("item__metadata__day", flat=True))
    assert members == {DAYS[1].isoformat()} and cycle.sample.frame_size == ROWS and cycle.sample.size == 30


def test_a_failed_cycle_goes_on_from_its_stage_after_run_now(world, ops, step):
    from monitoring.services.monitors import monitor_run_now

    make, people = world
    people.instant = True
    monitor = make()
    cycle = new_cycle(monitor, ops)
    step(cycle)
    LLMEndpoint.objects.filter(name="sim").update(name="renamed")  # the monitor's voter is gone
    result = step(cycle)
    assert result.state == CycleState.FAILED and result.reason == "labeling.voters: no LLM endpoint 'sim'"
    assert not step(cycle).claimed  # failed: nothing to do until someone acts
    LLMEndpoint.objects.filter(name="renamed").update(name="sim")
    again, created = monitor_run_now(monitor=monitor, partition=DAY, acting_user=ops, enqueue=False)
    assert not created and again.state == CycleState.LABELING and not again.reason
    until_done(step, cycle)
    assert made_counts(cycle)[:3] == (1, 1, 4)
