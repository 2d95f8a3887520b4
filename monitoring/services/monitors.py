"""Monitors: create from a file, pause, resume, run now, backfill, and the beat tick that makes
due cycles and re-queues the advance of cycles whose worker went quiet."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from goldsets.selectors import goldset_version_get
from monitoring.models import ACTIVE_STATES, Cycle, CycleState, Monitor
from monitoring.schema import cycle_seed, line_of_field, parse_monitor, partition_dates
from policies.models import Policy, PromptTemplateVersion, PromptVersion
from review.models import ReviewQueue
from runs.models import LLMEndpoint
from touchstone.audit import audit_event_record
from touchstone.errors import ApplicationError, NotFound
from touchstone.lines import LineError
from touchstone.roles import permission_require
from touchstone.tasks import enqueue_on_commit

ADVANCE_TASK = "monitoring.tasks.cycle_advance"


class MonitorInvalid(ApplicationError):
    """A bad monitor file: ``PATH:LINE: field: reason``; ``extra`` has path, line, field, reason."""

    code = "invalid_monitor"
    status = 400

    def __init__(self, error: LineError) -> None:
        super().__init__(str(error), extra={"path": error.path, "line": error.line, "field": error.field,
                                            "reason": error.reason})


def _check_references(spec: dict, *, text: str, path: str) -> tuple[Policy, ReviewQueue | None]:
    """The things the file names must exist: policy, endpoints, prompt, queue, golden set."""

    def bad(field: str, reason: str) -> MonitorInvalid:
        return MonitorInvalid(LineError(path, line_of_field(text, field), field, reason))

    policy = Policy.objects.filter(slug=spec["policy"]).first()
    if policy is None:
        raise bad("policy", f"no policy {spec['policy']!r}")
    for i, voter in enumerate(spec["labeling"]["voters"]):
        if not LLMEndpoint.objects.filter(name=voter["endpoint"]).exists():
            raise bad(f"labeling.voters[{i}].endpoint", f"no LLM endpoint {voter['endpoint']!r}")
    labeling = spec["labeling"]
    if "prompt_version" in labeling:
        found = list(PromptVersion.objects.filter(sha256__startswith=labeling["prompt_version"])
                     .values_list("policy_version__policy_id", flat=True)[:2])
        if len(found) != 1:
            raise bad("labeling.prompt_version", f"{'no' if not found else 'more than one'} prompt version "
                                                 f"starts with {labeling['prompt_version']!r}")
        if found[0] != policy.pk:
            raise bad("labeling.prompt_version", f"that prompt was compiled from another policy, not {policy.slug}")
    elif not PromptTemplateVersion.objects.filter(template__key=labeling["prompt"]["template"]).exists():
        raise bad("labeling.prompt.template", f"no prompt template {labeling['prompt']['template']!r}")
    queue = None
    if spec["audit"].get("queue"):
        queue = ReviewQueue.objects.select_related("policy_version").filter(name=spec["audit"]["queue"]).first()
        if queue is None:
            raise bad("audit.queue", f"no review queue {spec['audit']['queue']!r}")
        if queue.policy_version.policy_id != policy.pk:
            raise bad("audit.queue", f"queue {queue.name!r} reviews another policy")
    golden = spec["estimates"].get("golden_set")
    if golden:
        name, _, number = golden.partition("@")
        if number and not number.isdigit():
            raise bad("estimates.golden_set", f"{golden!r}: the version after '@' must be a number")
        try:
            version = goldset_version_get(name=name, number=int(number) if number else None)
        except NotFound as exc:
            raise bad("estimates.golden_set", exc.message) from exc
        if version.policy_version.policy_id != policy.pk:
            raise bad("estimates.golden_set", f"{golden!r} is a golden set of another policy")
    return policy, queue


def monitor_create(*, text: str, path: str, acting_user: AbstractBaseUser) -> Monitor:
    """A monitor from the YAML document ``text`` (read from ``path``). Needs
    ``monitoring.add_monitor``. Raises MonitorInvalid naming file:line: field."""
    permission_require(acting_user, "monitoring.add_monitor", to="create monitors")
    try:
        spec = parse_monitor(text, path=path)
    except LineError as exc:
        raise MonitorInvalid(exc) from exc
    policy, queue = _check_references(spec, text=text, path=path)
    if Monitor.objects.filter(name=spec["name"]).exists():
        raise MonitorInvalid(LineError(path, line_of_field(text, "name"), "name",
                                       f"a monitor named {spec['name']!r} exists already"))
    return _monitor_store(spec=spec, policy=policy, queue=queue, path=path, acting_user=acting_user)


@transaction.atomic(durable=True)
def _monitor_store(*, spec: dict, policy: Policy, queue: ReviewQueue | None, path: str,
                   acting_user: AbstractBaseUser) -> Monitor:
    monitor = Monitor.objects.create(name=spec["name"], policy=policy, spec=spec, cadence=spec["cadence"],
                                     start_date=datetime.date.fromisoformat(spec["start"]), review_queue=queue,
                                     source_path=path[-500:], created_by=acting_user)
    audit_event_record(actor=acting_user, event_type="monitor.created", obj=monitor,
                       details={"path": path, "policy": policy.slug, "cadence": monitor.cadence})
    return monitor


def monitor_create_from_file(*, path: Path, acting_user: AbstractBaseUser) -> Monitor:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MonitorInvalid(LineError(str(path), None, None, f"cannot read: {exc}")) from exc
    return monitor_create(text=text, path=str(path), acting_user=acting_user)


@transaction.atomic(durable=True)
def monitor_pause(*, monitor: Monitor, paused: bool, acting_user: AbstractBaseUser) -> Monitor:
    """Pause (no new cycles; cycles in progress hold where they are) or resume."""
    permission_require(acting_user, "monitoring.change_monitor", to="pause or resume monitors")
    monitor = Monitor.objects.select_for_update().get(pk=monitor.pk)
    monitor.is_paused = paused
    monitor.save(update_fields=["is_paused", "updated_at"])
    audit_event_record(actor=acting_user, event_type="monitor.paused" if paused else "monitor.resumed", obj=monitor)
    if not paused:  # held cycles go on
        for cycle_id in monitor.cycles.filter(state__in=ACTIVE_STATES).values_list("pk", flat=True):
            enqueue_on_commit(ADVANCE_TASK, cycle_id)
    return monitor


def _cycle_get_or_create(monitor: Monitor, partition: datetime.date, *, backfill: bool,
                         enqueue: bool = True) -> tuple[Cycle, bool]:
    """Runs inside a transaction; a new cycle's first advance is queued on commit (``enqueue``)."""
    existing = Cycle.objects.filter(monitor=monitor, partition_date=partition).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            cycle = Cycle.objects.create(monitor=monitor, partition_date=partition, is_backfill=backfill,
                                         seed=cycle_seed(int(monitor.spec["sample"]["seed"]), partition),
                                         next_attempt_at=timezone.now())
    except IntegrityError:  # created concurrently (another tick, a backfill)
        return Cycle.objects.get(monitor=monitor, partition_date=partition), False
    audit_event_record(actor=None, event_type="cycle.created", obj=cycle,
                       details={"monitor": monitor.name, "partition": partition.isoformat(), "backfill": backfill})
    if enqueue:
        enqueue_on_commit(ADVANCE_TASK, cycle.pk)
    return cycle, True


@dataclass
class CyclesMade:
    created: list[Cycle]
    existing: list[Cycle]


@transaction.atomic(durable=True)
def monitor_backfill(*, monitor: Monitor, date_from: datetime.date, date_to: datetime.date,
                     acting_user: AbstractBaseUser, enqueue: bool = True) -> CyclesMade:
    """The cycles of the partitions from ``date_from`` to ``date_to`` (those that do not exist
    yet; idempotent), queued to run (unless ``enqueue`` is False: the caller runs them).
    Needs ``monitoring.change_monitor``."""
    permission_require(acting_user, "monitoring.change_monitor", to="backfill monitors")
    if date_to < date_from:
        raise ApplicationError(f"--to {date_to} is before --from {date_from}")
    if date_to >= timezone.now().date():
        raise ApplicationError(f"--to {date_to}: only past partitions can be backfilled (today is "
                               f"{timezone.now().date()})")
    made = CyclesMade([], [])
    for partition in partition_dates(monitor.start_date, date_from, date_to, monitor.cadence):
        cycle, created = _cycle_get_or_create(monitor, partition, backfill=True, enqueue=enqueue)
        (made.created if created else made.existing).append(cycle)
    audit_event_record(actor=acting_user, event_type="monitor.backfilled", obj=monitor,
                       details={"from": date_from.isoformat(), "to": date_to.isoformat(),
                                "created": len(made.created), "existing": len(made.existing)})
    return made


def latest_due_partition(monitor: Monitor, today: datetime.date) -> datetime.date | None:
    """The newest partition whose day is over (yesterday, for a daily monitor)."""
    dates = partition_dates(monitor.start_date, today - datetime.timedelta(days=7), today - datetime.timedelta(days=1),
                            monitor.cadence)
    return dates[-1] if dates else None


@transaction.atomic(durable=True)
def monitor_run_now(*, monitor: Monitor, partition: datetime.date | None = None,
                    acting_user: AbstractBaseUser, enqueue: bool = True) -> tuple[Cycle, bool]:
    """The cycle of ``partition`` (default: the newest due one), created if need be and queued
    to advance now; a failed cycle goes back to the stage it failed at (after its cause was
    fixed), keeping what it made. Needs ``monitoring.change_monitor``."""
    permission_require(acting_user, "monitoring.change_monitor", to="run monitors")
    partition = partition or latest_due_partition(monitor, timezone.now().date())
    if partition is None:
        raise ApplicationError(f"monitor {monitor.name!r} has no due partition yet (it starts {monitor.start_date})")
    cycle, created = _cycle_get_or_create(monitor, partition, backfill=False, enqueue=enqueue)
    if not created and cycle.state == CycleState.FAILED:
        cycle = Cycle.objects.select_for_update().get(pk=cycle.pk)
        reason = cycle.reason
        cycle.state, cycle.reason, cycle.finished_at = cycle.stage, "", None
        cycle.save(update_fields=["state", "reason", "finished_at", "updated_at"])
        audit_event_record(actor=acting_user, event_type="cycle.retried", obj=cycle,
                           details={"stage": cycle.stage, "failed_because": reason})
    if not created and enqueue:
        enqueue_on_commit(ADVANCE_TASK, cycle.pk)
    audit_event_record(actor=acting_user, event_type="monitor.run_now", obj=monitor,
                       details={"partition": partition.isoformat(), "created": created})
    return cycle, created


@dataclass
class Tick:
    created: list[int]
    requeued: list[int]


def monitors_tick(*, now: datetime.datetime | None = None) -> Tick:
    """Beat's task: ``cycles_create_due`` then ``cycles_requeue_stalled``."""
    now = now or timezone.now()
    created = cycles_create_due(now=now)
    return Tick(created, cycles_requeue_stalled(now=now, skip=created))


def cycles_create_due(*, now: datetime.datetime) -> list[int]:
    """For each unpaused monitor, the cycles of its due partitions since its last cycle (at most
    ``MONITOR_CATCH_UP_PARTITIONS``; older gaps need a backfill), queued to run. Idempotent:
    cycles are unique per partition."""
    today = now.date()
    created = []
    for monitor in Monitor.objects.filter(is_paused=False):
        latest = latest_due_partition(monitor, today)
        if latest is None:
            continue
        last = monitor.cycles.order_by("-partition_date").values_list("partition_date", flat=True).first()
        step = 7 if monitor.cadence == "weekly" else 1
        first = last + datetime.timedelta(days=step) if last else latest
        dates = partition_dates(monitor.start_date, first, latest, monitor.cadence)
        with transaction.atomic():
            for partition in dates[-settings.MONITOR_CATCH_UP_PARTITIONS:]:
                cycle, made = _cycle_get_or_create(monitor, partition, backfill=False)
                if made:
                    created.append(cycle.pk)
    return created


def cycles_requeue_stalled(*, now: datetime.datetime | None = None, skip: list[int] = ()) -> list[int]:
    """A new advance for each active cycle whose next advance is overdue by
    ``MONITOR_REQUEUE_GRACE_SECONDS`` and whose claim expired: its worker was killed, or its
    message lost. Safe to repeat: the advance claims the cycle."""
    now = now or timezone.now()
    grace = now - datetime.timedelta(seconds=settings.MONITOR_REQUEUE_GRACE_SECONDS)
    stale = (Cycle.objects.filter(state__in=ACTIVE_STATES, monitor__is_paused=False)
             .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
             .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lt=grace))
             .exclude(pk__in=list(skip)))
    requeued = []
    for cycle_id in stale.values_list("pk", flat=True):
        Cycle.objects.filter(pk=cycle_id).update(next_attempt_at=now)
        enqueue_on_commit(ADVANCE_TASK, cycle_id)
        requeued.append(cycle_id)
    return requeued
