"""The demo's monitor (issue 16, Demo): 14 partitions with a known prevalence that rises on day 9,
a backfill, the alert on the rise and the truth line; and the partitions' bytes and truth are
the same on a rerun. Tasks run eagerly, the simulator in-process; no Label Studio (the audit
labels are imported)."""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model

from demo import monitoring as demo_monitoring
from demo.monitoring import (
    DAYS,
    MONITOR_NAME,
    RISE_DAY,
    SAMPLE_SIZE,
    TRUTH_SOURCE,
    demo_monitor,
    demo_partitions,
    frames_root,
)
from demo.pipeline import demo_endpoint, demo_files_prepare
from demo.setup import demo_policies_publish, demo_users_ensure, prompts_compile_on_worker
from monitoring.models import Alert, Cycle, MonitorReference
from prevalence.models import ANY_VIOLATION, PrevalenceEstimate
from simulator.engine import SimulatorConfig, load_answer_key
from simulator.server import serve_in_thread

pytestmark = pytest.mark.integration
TODAY = datetime.date(2026, 11, 30)


@pytest.fixture
def simulator_url(django_db_reset_sequences, eager_celery, settings, tmp_path) -> Iterator[str]:
    # Sequences restart at 1: the runs' audit draws hash item ids, so which items people label
    # (and so each day's estimate) would otherwise vary with the tests that ran before.
    settings.STATE_DIR = tmp_path
    _, answer_key = demo_files_prepare(tmp_path / "demo")
    server, _ = serve_in_thread(SimulatorConfig(answer_key=load_answer_key(answer_key)))
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def _digests() -> dict[str, str]:
    return {p.parent.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in frames_root().glob("date=*/*.parquet")}


def test_partitions_have_the_known_share_and_a_rerun_keeps_their_bytes(settings, tmp_path) -> None:
    settings.STATE_DIR = tmp_path
    lines: list[str] = []
    days = demo_partitions(log=lines.append, today=TODAY)
    assert [d.date for d in days] == [datetime.date(2026, 11, 16) + datetime.timedelta(days=i) for i in range(DAYS)]
    before, after = [d.truth for d in days if d.number < RISE_DAY], [d.truth for d in days if d.number >= RISE_DAY]
    assert all(0.10 < t < 0.18 for t in before) and all(0.26 < t < 0.34 for t in after), [d.truth for d in days]
    digests = _digests()
    assert len(digests) == DAYS and lines[0].startswith(f"{DAYS} daily partitions written")
    again = demo_partitions(log=lines.append, today=TODAY + datetime.timedelta(days=3))  # a later day: same dates
    assert [(d.date, d.truth) for d in again] == [(d.date, d.truth) for d in days]
    assert _digests() == digests and lines[-1].startswith(f"reused {DAYS} daily partitions")
    # The same rows on another anchor: a day's rows depend on its number alone.
    settings.STATE_DIR = tmp_path / "other"
    moved = demo_partitions(log=lines.append, today=TODAY - datetime.timedelta(days=40))
    assert [d.truth for d in moved] == [d.truth for d in days]


def test_the_demo_monitor_sees_the_rise_alerts_and_draws_the_truth(simulator_url) -> None:
    lines: list[str] = []
    demo_users_ensure(lines.append)
    prompts_compile_on_worker(demo_policies_publish(lines.append), lines.append)
    demo_endpoint(simulator_url=simulator_url, ops=get_user_model().objects.get(username="ops"), log=lines.append)
    result = demo_monitor(log=lines.append, sample_size=SAMPLE_SIZE, today=TODAY)
    assert not result.reused and all(d.state == "done" for d in result.days), [d.state for d in result.days]
    references = dict(MonitorReference.objects.filter(monitor=result.monitor, label=ANY_VIOLATION)
                      .values_list("partition_date", "value"))
    assert references == {d.date: d.truth for d in result.days}
    assert set(MonitorReference.objects.values_list("source", flat=True)) == {TRUTH_SOURCE}
    alerts = Alert.objects.filter(monitor=result.monitor)
    assert alerts.exists() and min(a.cycle.partition_date for a in alerts) >= result.days[RISE_DAY - 1].date, [
        (a.rule, a.cycle.partition_date) for a in alerts]
    assert result.days[RISE_DAY - 1].alerts  # the rise is flagged on its day
    assert {a.rule for d in result.days[RISE_DAY - 1:] for a in d.alerts} == {"above-25-percent", "rising"}
    risen = [d.estimates["ppi++"][0] for d in result.days if d.number >= RISE_DAY]
    before = [d.estimates["ppi++"][0] for d in result.days if d.number < RISE_DAY]
    assert sum(risen) / len(risen) > sum(before) / len(before) + 0.08, (before, risen)

    counts = (Cycle.objects.count(), PrevalenceEstimate.objects.count(), Alert.objects.count())
    again: list[str] = []
    second = demo_monitor(log=again.append, sample_size=SAMPLE_SIZE, today=TODAY + datetime.timedelta(days=1))
    assert second.reused and (Cycle.objects.count(), PrevalenceEstimate.objects.count(),
                              Alert.objects.count()) == counts
    assert any(line.startswith(f"reused monitor {MONITOR_NAME} ({DAYS} of {DAYS} cycles done") for line in again), again
    assert demo_monitoring.monitor_file_text(first=result.days[0].date, sample_size=SAMPLE_SIZE).count("{date}") == 1
