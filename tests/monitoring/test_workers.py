"""Real worker processes (real Redis; PostgreSQL under scripts/with_postgres.sh): two workers
advance the same cycles, each message sent several times, without duplicating anything; a
worker killed with -9 mid-cycle, then a new one: the cycle completes exactly once."""

from __future__ import annotations

import os
import signal
import time

import pytest

from content.models import Sample
from demo import devstack
from monitoring.models import Alert, Cycle, CycleState
from monitoring.services.monitors import cycles_requeue_stalled, monitor_backfill
from prevalence.models import PrevalenceEstimate
from runs.models import Judgement, LabelingRun, LLMEndpoint
from runs.services.runs import labeling_run_watchdog
from simulator.engine import SimulatorConfig, parse_models
from simulator.server import serve_in_thread
from tests.monitoring.conftest import DAYS, TRUTH, People
from touchstone.models import AuditEvent

pytestmark = pytest.mark.integration
QUEUES = ["default", "llm"]


@pytest.fixture
def workers(transactional_db, redis_url, tmp_path, settings):
    """Start worker processes on the session's Redis and the test database; stop them after."""
    from conftest import celery_point_at, child_env
    from touchstone.celery import app

    saved = (app.conf.broker_url, app.conf.result_backend)
    settings.CELERY_BROKER_URL = redis_url
    celery_point_at(redis_url, redis_url)
    started: list[devstack.ManagedProcess] = []

    def start(name: str) -> devstack.ManagedProcess:
        env = child_env(CELERY_BROKER_URL=redis_url, CELERY_RESULT_BACKEND=redis_url, MONITOR_POLL_SECONDS="1",
                        MONITOR_CYCLE_LEASE_SECONDS="4", MONITOR_RUN_STALE_SECONDS="3")
        process = devstack.start_celery_worker(env=env, log_path=tmp_path / f"{name}.log", queues=QUEUES,
                                               concurrency=2, hostname=name)
        started.append(process)
        devstack.wait_until(lambda: any(key.startswith(f"{name}@") for reply in app.control.ping(timeout=0.5)
                                                    for key in reply), timeout=60,
                            what=f"celery worker {name}", process=process)
        return process

    yield start
    for process in started:
        process.stop()
    celery_point_at(*saved)


def wait_done(cycles: list[Cycle], people: People, timeout: float) -> None:
    """Act as the people: label what the runs routed to review, until every cycle is done."""
    deadline = time.monotonic() + timeout
    while True:
        states = dict(Cycle.objects.filter(pk__in=[c.pk for c in cycles]).values_list("pk", "state"))
        if all(s == CycleState.DONE for s in states.values()):
            return
        failed = Cycle.objects.filter(pk__in=states, state=CycleState.FAILED).first()
        assert failed is None, failed.shown_state
        assert time.monotonic() < deadline, f"cycles not done: {states}"
        for run in LabelingRun.objects.filter(name__startswith="mon-").select_related("prompt_version"):
            routed = list(run.decisions.filter(outcome="human_review").values_list("item_id", flat=True))
            people.answer(routed, policy_version=run.prompt_version.policy_version)
        time.sleep(0.3)


def assert_exactly_once(cycle: Cycle) -> None:
    cycle.refresh_from_db()
    prefix = f"mon-{cycle.monitor.name}-{cycle.partition_date}"
    assert Sample.objects.filter(name=prefix).count() == 1
    runs = LabelingRun.objects.filter(name__startswith=prefix)
    assert runs.count() == 1
    pairs = list(Judgement.objects.filter(run__in=runs).values_list("item_id", "voter_id"))
    assert len(pairs) == len(set(pairs)) == 30 * 2
    assert PrevalenceEstimate.objects.filter(run__in=runs).count() == 4
    assert AuditEvent.objects.filter(event_type="cycle.done", object_id=str(cycle.pk)).count() == 1
    assert AuditEvent.objects.filter(event_type="cycle.drawn", object_id=str(cycle.pk)).count() == 1
    rules = list(Alert.objects.filter(cycle=cycle).values_list("rule", flat=True))
    assert len(rules) == len(set(rules))


def test_two_workers_share_the_cycles_without_duplicates(live_world, ops, workers, tmp_path):
    from monitoring.tasks import cycle_advance

    make, people = live_world
    monitor = make(body_text=None, deadline=48)
    monitor.spec["audit"].pop("queue")  # people answer from the test; nothing is pushed
    type(monitor).objects.filter(pk=monitor.pk).update(spec=monitor.spec, review_queue=None)
    workers("w1")
    workers("w2")
    made = monitor_backfill(monitor=monitor, date_from=DAYS[0], date_to=DAYS[3], acting_user=ops)
    for cycle in made.created:  # redelivered and duplicated messages on top of the backfill's own
        for _ in range(3):
            cycle_advance.delay(cycle.pk)
    wait_done(made.created, people, timeout=150)
    for cycle in made.created:
        assert_exactly_once(cycle)
    for name in ("w1", "w2"):  # both took part
        assert "monitoring.tasks.cycle_advance" in (tmp_path / f"{name}.log").read_text(), name


def test_a_worker_killed_mid_cycle_leaves_a_cycle_that_completes_once(live_world, ops, workers, settings):
    server, _ = serve_in_thread(SimulatorConfig(models=parse_models(["sim-strong:0.97", "sim-medium:0.9"]),
                                                answer_key=TRUTH, latency_ms=120))
    try:
        LLMEndpoint.objects.filter(name="sim").update(
            base_url=f"http://127.0.0.1:{server.server_address[1]}/v1", max_concurrency=2)
        make, people = live_world
        monitor = make(body_text=None, deadline=48)
        monitor.spec["audit"].pop("queue")
        type(monitor).objects.filter(pk=monitor.pk).update(spec=monitor.spec, review_queue=None)
        first = workers("first")
        made = monitor_backfill(monitor=monitor, date_from=DAYS[0], date_to=DAYS[0], acting_user=ops)
        cycle = made.created[0]
        deadline = time.monotonic() + 60
        while not Judgement.objects.filter(run__name__startswith=f"mon-{monitor.name}-").count() >= 6:
            assert time.monotonic() < deadline, "the cycle's run never started"
            time.sleep(0.05)
        os.killpg(first.pid, signal.SIGKILL)  # the worker and its pool children, mid-run, no goodbye
        first.popen.wait(timeout=10)
        cycle.refresh_from_db()
        assert cycle.state != CycleState.DONE
        workers("second")
        # What beat does every minute: re-queue cycles whose claim ran out and whose advance is
        # overdue, and the runs whose chunks went quiet (the killed worker held them unacked).
        settings.MONITOR_REQUEUE_GRACE_SECONDS = 0
        deadline = time.monotonic() + 30
        while cycle.pk not in cycles_requeue_stalled():
            assert time.monotonic() < deadline, "the killed worker's claim never ran out"
            time.sleep(0.5)
        labeling_run_watchdog(stale_after_seconds=0)
        wait_done([cycle], people, timeout=120)
        assert_exactly_once(cycle)
    finally:
        server.shutdown()
        server.server_close()
