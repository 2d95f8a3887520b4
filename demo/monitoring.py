"""The demo's monitor: harassment measured daily over 14 synthetic partitions built from
ConvAbuse, whose prevalence is known by construction and rises on day 9.

- **Partitions** (``.state/demo/frames/convabuse/date=YYYY-MM-DD/part-0.parquet``, hive style):
  the 14 days ending the day before the first ``make demo`` (kept: a later run reuses the files
  and their dates). Day ``i`` resamples, with replacement and seeded by ``i`` alone, the
  ConvAbuse items whose annotators have a strict majority: the violating ones (majority label
  not ``not_harassment``) at ``BASE_SHARE`` (their natural share) on days 1-8 and
  ``RISEN_SHARE`` from day 9, each row a binomial draw; the rest from the others. Columns:
  ``id``, ``user`` (the turn), ``convabuse_id``, ``bot``, ``impressions``.
- **Truth**: the realised share of rows whose annotators' majority is a violation, per
  partition (the monitor's design is uniform, so its estimand is that unweighted share).
- **Monitor** ``harassment-convabuse-daily``: a uniform daily sample, labelled by a SIMULATED
  voter with the published harassment prompt; the audit share's human labels are the ConvAbuse
  annotators' real labels, imported for the audited items (no Label Studio queue: the cycle
  waits for them as for any people); PPI++ and Hájek; two alert rules.
- **Backfill**: the cycles are made without queueing and advanced here, in date order (the
  trailing-level rule reads the finished cycles before each one); the labeling runs' chunks run
  on the worker. A second ``make demo`` finds the monitor and its cycles done and says so.
"""

from __future__ import annotations

import datetime
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from content.models import ContentItem
from demo.pipeline import DATA, DEMO_MODEL, ENDPOINT, VENDOR, annotations_by_item
from monitoring.models import Alert, Cycle, CycleState, Monitor, MonitorReference
from monitoring.services.cycles import cycle_advance, cycle_run_to_rest
from monitoring.services.monitors import monitor_backfill, monitor_create
from monitoring.services.references import monitor_reference_set
from prevalence.models import ANY_VIOLATION
from review.models import HumanLabel
from review.services.human_labels import human_label_import
from runs.models import DecisionOutcome

MONITOR_NAME = "harassment-convabuse-daily"
DAYS = 14
RISE_DAY = 9  # the first day at RISEN_SHARE
ROWS_PER_DAY = 1500
RISEN_SHARE = 0.30
SEED = 2026
SAMPLE_SIZE = 200
AUDIT_SHARE = 0.3
ESTIMATORS = ("ppi++", "hajek")
TRUTH_SOURCE = "known by construction: the demo's partitions"
NOT_VIOLATING = "not_harassment"


@dataclass
class DemoDay:
    number: int
    date: datetime.date
    truth: float
    state: str = ""
    estimates: dict[str, tuple[float, float | None, float | None]] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)


@dataclass
class DemoMonitor:
    monitor: Monitor
    days: list[DemoDay]
    reused: bool
    truth_source: str = TRUTH_SOURCE

    @property
    def alerts(self) -> list[Alert]:
        return [alert for day in self.days for alert in day.alerts]


def frames_root() -> Path:
    return Path(settings.STATE_DIR) / "demo" / "frames" / "convabuse"


def _majorities() -> dict[str, str]:
    """ConvAbuse item id → its annotators' strict-majority label (items without one left out)."""
    out = {}
    for item, given in annotations_by_item().items():
        label, votes = Counter(label for _, label in given).most_common(1)[0]
        if votes * 2 > len(given):
            out[item] = label
    return out


def _population(majority: dict[str, str]) -> tuple[list[dict], list[dict]]:
    """(violating, other) ConvAbuse items with a strict majority, in file order."""
    violating, other = [], []
    with (DATA / "items.jsonl").open() as handle:
        for line in handle:
            item = json.loads(line)
            if item["id"] not in majority:
                continue
            row = {"user": item["components"][item["target_component"]], "convabuse_id": item["id"],
                   "bot": item["bot"]}
            (other if majority[item["id"]] == NOT_VIOLATING else violating).append(row)
    return violating, other


def base_share(majority: dict[str, str]) -> float:
    """The natural share of violating items among those with a strict majority (≈ 0.137)."""
    return sum(1 for label in majority.values() if label != NOT_VIOLATING) / len(majority)


def _partition(number: int, violating: list[dict], other: list[dict], share: float) -> pa.Table:
    rng = np.random.default_rng([SEED, number])
    k = int(rng.binomial(ROWS_PER_DAY, share))
    picked = ([violating[i] for i in rng.integers(0, len(violating), k)]
              + [other[i] for i in rng.integers(0, len(other), ROWS_PER_DAY - k)])
    order = rng.permutation(ROWS_PER_DAY)
    rows = [picked[i] for i in order]
    impressions = np.maximum(1, np.rint(rng.lognormal(4.0, 1.5, ROWS_PER_DAY))).astype("int64")
    return pa.table({
        "id": [f"d{number:02d}-{j:04d}" for j in range(ROWS_PER_DAY)],
        "user": [r["user"] for r in rows], "convabuse_id": [r["convabuse_id"] for r in rows],
        "bot": [r["bot"] for r in rows], "impressions": impressions,
    })


def _path(day: datetime.date) -> Path:
    return frames_root() / f"date={day.isoformat()}" / "part-0.parquet"


def demo_partitions(*, log: Callable[[str], None], today: datetime.date | None = None) -> list[DemoDay]:
    """Write the 14 daily partitions that are missing (the first run: the 14 days ending
    yesterday; later runs keep the first run's dates) and return each day with its truth."""
    majority = _majorities()
    root = frames_root()
    existing = sorted(datetime.date.fromisoformat(p.parent.name.removeprefix("date="))
                      for p in root.glob("date=*/part-0.parquet")) if root.exists() else []
    first = existing[0] if existing else (today or timezone.now().date()) - datetime.timedelta(days=DAYS)
    dates = [first + datetime.timedelta(days=i) for i in range(DAYS)]
    base = base_share(majority)
    violating, other = _population(majority) if len(set(existing) & set(dates)) < DAYS else ([], [])
    written = 0
    days = []
    for number, day in enumerate(dates, start=1):
        path = _path(day)
        if not path.exists():
            table = _partition(number, violating, other, RISEN_SHARE if number >= RISE_DAY else base)
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".parquet.partial")
            pq.write_table(table, partial)
            partial.replace(path)
            written += 1
        ids = pq.read_table(path, columns=["convabuse_id"]).column("convabuse_id").to_pylist()
        truth = sum(1 for i in ids if majority[i] != NOT_VIOLATING) / len(ids)
        days.append(DemoDay(number, day, truth))
    span = f"{dates[0]} .. {dates[-1]}, {ROWS_PER_DAY} rows a day, under {root}"
    if written:
        log(f"{written} daily partitions written ({span}); violating share by construction {base:.3f} on days "
            f"1-{RISE_DAY - 1}, {RISEN_SHARE:.2f} from day {RISE_DAY} (binomial rows)")
    else:
        log(f"reused {DAYS} daily partitions ({span})")
    return days


def monitor_file_text(*, first: datetime.date, sample_size: int) -> str:
    glob = str(frames_root() / "date={date}" / "part-0.parquet")
    return f"""\
# The demo's harassment monitor (written by `make demo`; SIMULATED voter, real human labels).
name: {MONITOR_NAME}
policy: harassment
frame:
  glob: {json.dumps(glob)}
  parts: [user]
  metadata: [convabuse_id, bot, impressions]
sample: {{design: uniform, size: {sample_size}, seed: {SEED}}}
labeling:
  prompt: {{template: json_classifier, model: {DEMO_MODEL.model}, temperature: {DEMO_MODEL.temperature}, \
seed: {DEMO_MODEL.seed}, max_output_tokens: {DEMO_MODEL.max_output_tokens}}}
  voters: [{{endpoint: {ENDPOINT}, model: {DEMO_MODEL.model}}}]
  confidence_threshold: 0.75
audit: {{share: {AUDIT_SHARE}, label_deadline_hours: 24}}
estimates: {{estimators: [{", ".join(ESTIMATORS)}], alpha: 0.05}}
cadence: daily
start: {first.isoformat()}
alerts:
  - {{name: above-25-percent, kind: estimate_above, label: {ANY_VIOLATION}, threshold: 0.25}}
  - {{name: rising, kind: ci_lower_above_trailing, label: {ANY_VIOLATION}, window: 7}}
"""


def _routed(cycle: Cycle) -> list[tuple[object, list[int]]]:
    return [(cr.policy_version, list(cr.run.decisions.filter(outcome=DecisionOutcome.HUMAN_REVIEW)
                                     .values_list("item_id", flat=True)))
            for cr in cycle.cycle_runs.select_related("policy_version", "run") if cr.run_id]


def _audit_labels_import(cycle: Cycle, monitor: Monitor, annotations: dict, ops) -> int:
    """The ConvAbuse annotators' real labels of the cycle's audited items (those its runs routed
    to people), imported once: the people's side of the cycle."""
    imported = 0
    for version, item_ids in _routed(cycle):
        given = set(HumanLabel.objects.filter(policy_version=version, item_id__in=item_ids)
                    .values_list("item_id", "labeler__external_id"))  # an import cut short: only the rest
        lines = [json.dumps({"external_id": item.external_id, "labeler": annotator, "vendor": VENDOR, "label": label})
                 for item in ContentItem.objects.filter(pk__in=item_ids).order_by("pk")
                 for annotator, label in annotations[item.metadata["convabuse_id"]]
                 if (item.pk, annotator) not in given]
        if not lines:
            continue
        path = Path(settings.STATE_DIR) / "demo" / "monitor-audit" / f"{cycle.partition_date}-v{version.number}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
        job = human_label_import(path=path, policy_version=version, content_source=f"mon-{monitor.name}",
                                 acting_user=ops)
        imported += job.imported
    return imported


def _drive(monitor: Monitor, cycles: list[Cycle], ops, log: Callable[[str], None], timeout: float) -> None:
    """Draw and start every cycle's run (the worker labels them meanwhile), then finish the
    cycles one by one in date order: import the audit labels when a cycle waits for them."""
    annotations = annotations_by_item()
    started = time.monotonic()
    for cycle in cycles:
        cycle_run_to_rest(cycle_id=cycle.pk)
    deadline = time.monotonic() + timeout
    labels = 0
    for cycle in cycles:
        while True:
            cycle.refresh_from_db()
            if cycle.state in (CycleState.DONE, CycleState.FAILED):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the demo monitor's cycle {cycle} did not finish: {cycle.shown_state}")
            if cycle.stage == CycleState.REVIEWING:
                labels += _audit_labels_import(cycle, monitor, annotations, ops)
            result = cycle_advance(cycle_id=cycle.pk)
            if not result.claimed or result.delay != 0:
                time.sleep(0.2)
    log(f"monitor {monitor.name}: {len(cycles)} cycles backfilled in {time.monotonic() - started:.0f} s; {labels} "
        "real ConvAbuse labels imported for their audited items")


def demo_monitor(*, log: Callable[[str], None], sample_size: int = SAMPLE_SIZE, timeout: float = 600,
                 today: datetime.date | None = None) -> DemoMonitor:
    """The partitions, the monitor, its backfill and its truth line; each made once."""
    ops = get_user_model().objects.get(username="ops")
    days = demo_partitions(log=log, today=today)
    monitor = Monitor.objects.filter(name=MONITOR_NAME).first()
    reused = monitor is not None
    if monitor is None:
        path = Path(settings.STATE_DIR) / "demo" / f"{MONITOR_NAME}.yaml"
        path.write_text(monitor_file_text(first=days[0].date, sample_size=sample_size))
        monitor = monitor_create(text=path.read_text(), path=str(path), acting_user=ops)
        log(f"monitor {monitor.name} created from {path} (sample {sample_size} a day, audit share {AUDIT_SHARE:.0%})")
    made = monitor_backfill(monitor=monitor, date_from=days[0].date, date_to=days[-1].date, acting_user=ops,
                            enqueue=False)
    cycles = sorted(made.created + made.existing, key=lambda c: c.partition_date)
    unfinished = [c for c in cycles if c.state not in (CycleState.DONE, CycleState.FAILED)]
    if unfinished:
        _drive(monitor, unfinished, ops, log, timeout)
    monitor_reference_set(monitor=monitor, label=ANY_VIOLATION, points={d.date: d.truth for d in days},
                          source=TRUTH_SOURCE, acting_user=ops)
    by_date = {d.date: d for d in days}
    for cycle in Cycle.objects.filter(monitor=monitor, partition_date__in=list(by_date)).prefetch_related(
            "cycle_runs__estimates", "alerts"):
        day = by_date[cycle.partition_date]
        day.state = cycle.state
        for cr in cycle.cycle_runs.all():
            if cr.is_primary:
                day.estimates = {e.estimator: (e.estimate, e.ci_low, e.ci_high)
                                 for e in cr.estimates.all() if e.label == ANY_VIOLATION}
        day.alerts = sorted(cycle.alerts.all(), key=lambda a: a.rule)
    if reused:
        done = sum(1 for d in days if d.state == CycleState.DONE)
        alerts = Alert.objects.filter(monitor=monitor).count()
        truth = MonitorReference.objects.filter(monitor=monitor).count()
        log(f"reused monitor {monitor.name} ({done} of {DAYS} cycles done, {alerts} alerts, truth line of {truth} "
            "days)")
    return DemoMonitor(monitor=monitor, days=days, reused=reused)
