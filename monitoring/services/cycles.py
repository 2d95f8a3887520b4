"""The cycle state machine: ``cycle_advance`` claims a cycle, works its current stage once, and
says when it should be advanced again.

Stages (``Cycle.stage``) and what each makes, found again by a re-run after a crash:

- drawing: the sample, by its deterministic name ``mon-<monitor>-<date>`` (a frame glob's
  partition through ``content``'s frame draw, or the imported content of a source whose
  metadata date field is the partition date), with the cycle's seed.
- labeling: one CycleRun per policy version (two in a prompt change's overlap window), each
  with its run by name ``mon-<monitor>-<date>-v<N>``; the run is started once, its chunks run
  on the ``llm`` queue; an endpoint down shows as ``waiting`` with the run's reason.
- reviewing: the runs' routed items (the audit share, disagreements, low confidence) pushed
  to the review queue once (pushes are idempotent), then wait until every routed item has a
  final human label, or the label deadline passes (then estimate with ``allow_pending``).
- estimating: each run's prevalence estimates, once (found by run before any is made), the
  audit agreement, the cost, and the alert rules (one Alert per cycle and rule).

The claim is a conditional UPDATE with a lease (``MONITOR_CYCLE_LEASE_SECONDS``): one worker
works a cycle at a time; a worker killed mid-stage leaves a lease that runs out, and the beat
tick re-queues the cycle. Stages call other apps' durable services, so they hold no row lock
while they work; what makes them safe to repeat is that each looks for what an earlier attempt
made before making it (and the unique names and constraints underneath).
"""

from __future__ import annotations

import datetime
import glob
import logging
import uuid
from dataclasses import dataclass
from decimal import Decimal

from celery.exceptions import Retry
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from content import frames
from content.models import ContentItem, Sample
from content.services.frames import FrameContent, sample_draw
from content.services.sampling import SamplingFailed, sample_create
from goldsets.selectors import goldset_version_get
from monitoring.models import ACTIVE_STATES, Cycle, CycleRun, CycleState, Monitor
from monitoring.services.alerts import cycle_alerts_evaluate
from policies.compiler import ModelSettings
from policies.models import PolicyVersion, PolicyVersionStatus, PromptTemplateVersion, PromptVersion
from policies.selectors import policy_version_spec
from policies.services import prompt_version_compile
from prevalence.models import PrevalenceEstimate
from prevalence.selectors import final_human_labels
from prevalence.services import PrevalenceRequest, prevalence_estimate_create
from review.labelstudio import LabelStudioNotConfigured, LabelStudioUnavailable
from review.models import ReviewQueue
from review.services.queues import review_queue_push
from runs.models import DecisionOutcome, LabelingRun, LLMCall, LLMEndpoint, RunStatus
from runs.services.runs import (
    RunConfigurationError,
    VoterSpec,
    labeling_run_create,
    labeling_run_resume,
    labeling_run_start,
)
from runs.services.work import EndpointUnavailable
from touchstone.audit import audit_event_record
from touchstone.errors import ApplicationError

logger = logging.getLogger(__name__)


class CycleWait(Exception):
    """Something outside holds the stage: the cycle waits with this reason and is retried."""

    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.delay = reason, delay


@dataclass
class Advance:
    cycle_id: int
    claimed: bool
    state: str = ""
    stage: str = ""
    reason: str = ""
    delay: float | None = None  # seconds until the next advance; None: nothing more to do


def sample_name(cycle: Cycle) -> str:
    return f"mon-{cycle.monitor.name}-{cycle.partition_date.isoformat()}"


def run_name(cycle: Cycle, policy_version: PolicyVersion) -> str:
    return f"mon-{cycle.monitor.name}-{cycle.partition_date.isoformat()}-v{policy_version.number}"


# --- the claim -----------------------------------------------------------------------------------


def cycle_claim(*, cycle_id: int, owner: str, now: datetime.datetime | None = None) -> bool:
    """Take the cycle for ``MONITOR_CYCLE_LEASE_SECONDS`` if it is active, its monitor not
    paused, and nobody holds an unexpired lease. One UPDATE: exactly one of concurrent callers
    wins, on SQLite and PostgreSQL alike."""
    now = now or timezone.now()
    lease = datetime.timedelta(seconds=settings.MONITOR_CYCLE_LEASE_SECONDS)
    return Cycle.objects.filter(pk=cycle_id, state__in=ACTIVE_STATES, monitor__is_paused=False).filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now)).update(lease_owner=owner, lease_until=now + lease) == 1


def _release(cycle_id: int, owner: str, delay: float | None) -> None:
    nxt = None if delay is None else timezone.now() + datetime.timedelta(seconds=delay)
    Cycle.objects.filter(pk=cycle_id, lease_owner=owner).update(lease_owner="", lease_until=None, next_attempt_at=nxt)


def _heartbeat(cycle_id: int, owner: str) -> None:
    """Extend this worker's lease before a long step (a big frame's draw, the estimates), so the
    claim does not run out under a worker that is alive."""
    lease = datetime.timedelta(seconds=settings.MONITOR_CYCLE_LEASE_SECONDS)
    if not Cycle.objects.filter(pk=cycle_id, lease_owner=owner).update(lease_until=timezone.now() + lease):
        raise CycleLost(f"cycle {cycle_id} was taken over by another worker (its lease ran out)")


def _still_mine(cycle_id: int, owner: str) -> Cycle:
    """Runs in a transaction: the cycle locked, if this worker still holds it."""
    cycle = Cycle.objects.select_for_update().select_related("monitor").get(pk=cycle_id)
    if cycle.lease_owner != owner:
        raise CycleLost(f"cycle {cycle} was taken over by another worker (its lease ran out)")
    return cycle


class CycleLost(Exception):
    pass


def _move(cycle_id: int, owner: str, *, state: str, stage: str | None = None, reason: str = "",
          event: str | None = None, **fields: object) -> Cycle:
    with transaction.atomic():
        cycle = _still_mine(cycle_id, owner)
        cycle.state, cycle.reason = state, reason[:500]
        cycle.stage = stage or (state if state not in (CycleState.WAITING, CycleState.FAILED) else cycle.stage)
        cycle.waiting_since = (cycle.waiting_since or timezone.now()) if state == CycleState.WAITING else None
        for name, value in fields.items():
            setattr(cycle, name, value)
        cycle.save()
        if event:
            audit_event_record(actor=None, event_type=f"cycle.{event}", obj=cycle,
                               details={"state": state, "stage": cycle.stage, "reason": reason[:500]})
    return cycle


# --- advancing -----------------------------------------------------------------------------------


def cycle_advance(*, cycle_id: int, owner: str | None = None) -> Advance:
    """Claim the cycle and work its current stage once. Returns what it did and when to come
    back (``delay``). An ApplicationError of a stage fails the cycle with its message; other
    errors (a lost database connection) propagate for the task's retry, the lease released."""
    owner = owner or uuid.uuid4().hex
    if not cycle_claim(cycle_id=cycle_id, owner=owner):
        return Advance(cycle_id, claimed=False)
    delay: float | None = None
    try:
        Cycle.objects.filter(pk=cycle_id).update(advances=F("advances") + 1)
        cycle = Cycle.objects.select_related("monitor", "monitor__created_by", "sample").get(pk=cycle_id)
        stage = cycle.stage if cycle.state in (CycleState.WAITING, CycleState.PENDING) else cycle.state
        if cycle.state == CycleState.PENDING:
            stage = CycleState.DRAWING
        try:
            delay = STAGES[stage](cycle, owner)
        except CycleWait as wait:
            poll = settings.MONITOR_POLL_SECONDS
            delay = poll if wait.delay is None else max(0.0, min(wait.delay, poll * 6))
            cycle = _move(cycle_id, owner, state=CycleState.WAITING, stage=stage, reason=wait.reason,
                          event=None if cycle.state == CycleState.WAITING and cycle.reason == wait.reason
                          else "waiting")
        except CycleLost:
            return Advance(cycle_id, claimed=False)
        except ApplicationError as exc:
            logger.warning("cycle %s failed at %s: %s", cycle, stage, exc.message)
            cycle = _move(cycle_id, owner, state=CycleState.FAILED, stage=stage, reason=exc.message, event="failed",
                          finished_at=timezone.now())
            delay = None
        except (OperationalError, InterfaceError):
            raise  # the database itself: the task retries with backoff
        except Exception as exc:  # a bug or an unforeseen error: visible on the cycle, retried slowly
            logger.exception("cycle %s: unexpected error at %s", cycle, stage)
            delay = settings.MONITOR_POLL_SECONDS * 10
            cycle = _move(cycle_id, owner, state=CycleState.WAITING, stage=stage, event="error",
                          reason=f"unexpected error at {stage}, retrying: {type(exc).__name__}: {exc}")
        cycle.refresh_from_db()
        return Advance(cycle_id, True, cycle.state, cycle.stage, cycle.reason, delay)
    finally:
        _release(cycle_id, owner, delay)


def cycle_run_to_rest(*, cycle_id: int, max_steps: int = 20) -> Advance:
    """Advance in this process while there is immediate work (delay 0): a synchronous run for
    tests, the CLI's ``--sync`` and the demo. Stops at done, failed or a wait."""
    result = Advance(cycle_id, False)
    for _ in range(max_steps):
        result = cycle_advance(cycle_id=cycle_id)
        if not result.claimed or result.delay != 0:
            break
    return result


# --- drawing -------------------------------------------------------------------------------------


def _stage_draw(cycle: Cycle, owner: str) -> float:
    name = sample_name(cycle)
    sample = Sample.objects.filter(name=name).first()
    if sample is None:
        _move(cycle.pk, owner, state=CycleState.DRAWING, event="drawing" if cycle.state == CycleState.PENDING else None)
        _heartbeat(cycle.pk, owner)
        try:
            sample = _draw(cycle, name)
        except SamplingFailed:
            sample = Sample.objects.filter(name=name).first()  # drawn concurrently by a worker whose lease ran out
            if sample is None:
                raise
    _move(cycle.pk, owner, state=CycleState.LABELING, event="drawn", sample=sample, drawn_at=timezone.now())
    return 0


def _draw(cycle: Cycle, name: str) -> Sample:
    spec, monitor = cycle.monitor.spec, cycle.monitor
    design_spec, frame_spec = spec["sample"], spec["frame"]
    user = monitor.created_by
    if "glob" in frame_spec:
        location = frame_spec["glob"].replace("{date}", cycle.partition_date.isoformat())
        if "://" not in location and not glob.glob(location):
            raise CycleWait(f"no file matches {location} yet (the partition of {cycle.partition_date} is not written)")
        design = frames.Design(kind=design_spec["design"], size=design_spec["size"], seed=cycle.seed,
                               id_column=design_spec.get("id_column", "id"),
                               weight_column=design_spec.get("weight_column"),
                               stratify_by=design_spec.get("stratify_by"),
                               score_column=design_spec.get("score_column"), floor=design_spec.get("floor", 0.01))
        content = FrameContent(parts=tuple(frame_spec["parts"]) if frame_spec.get("parts") else None,
                               metadata=tuple(frame_spec["metadata"]) if "metadata" in frame_spec else None)
        return sample_draw(name=name, frame_location=location, design=design, source=f"mon-{monitor.name}",
                           content=content, acting_user=user)
    source = frame_spec["content"]
    day = {f"metadata__{source['date_field']}": cycle.partition_date.isoformat()}
    if not ContentItem.objects.filter(source=source["source"], **day).exists():
        raise CycleWait(f"no content of source {source['source']} with {source['date_field']} = "
                        f"{cycle.partition_date} imported yet")
    return sample_create(name=name, method=design_spec["design"], size=design_spec["size"], seed=cycle.seed,
                         source=source["source"],
                         metadata_filter={source["date_field"]: cycle.partition_date.isoformat()},
                         stratify_by=design_spec.get("stratify_by"), score_signal=design_spec.get("score_column"),
                         floor=design_spec.get("floor", 0.01), acting_user=user)


# --- labeling ------------------------------------------------------------------------------------


def _versions(cycle: Cycle) -> list[tuple[PolicyVersion, PromptVersion, bool]]:
    """(policy version, prompt, primary?) to label the cycle with: the fixed prompt; or the
    published version's prompt, and the previous published version's too when the partition
    is within ``overlap_days`` of the newest publication (the same sample, both lines)."""
    labeling = cycle.monitor.spec["labeling"]
    if "prompt_version" in labeling:
        prompt = PromptVersion.objects.select_related("policy_version").get(
            sha256__startswith=labeling["prompt_version"])
        return [(prompt.policy_version, prompt, True)]
    policy = cycle.monitor.policy
    current = policy.versions.filter(status=PolicyVersionStatus.PUBLISHED).first()
    if current is None:
        raise CycleWait(f"policy {policy.slug} has no published version to label with")
    p = labeling["prompt"]
    template = PromptTemplateVersion.objects.filter(template__key=p["template"]).order_by("-pk").first()
    if template is None:
        raise ApplicationError(f"labeling.prompt.template: no prompt template {p['template']!r}")
    model = ModelSettings(model=p["model"], temperature=p.get("temperature", 0.0),
                          max_output_tokens=p.get("max_output_tokens", 512), seed=p.get("seed"))

    def compiled(version: PolicyVersion) -> PromptVersion:
        return prompt_version_compile(policy_version=version, template_version=template, settings=model,
                                      acting_user=cycle.monitor.created_by)[0]

    out = [(current, compiled(current), True)]
    overlap = int(cycle.monitor.spec.get("overlap_days", 7))
    if current.published_at and overlap:
        previous = (policy.versions.filter(published_at__isnull=False, published_at__lt=current.published_at)
                    .exclude(pk=current.pk).order_by("-published_at").first())
        if previous is not None and abs((cycle.partition_date - current.published_at.date()).days) < overlap:
            out.append((previous, compiled(previous), False))
    return out


def _voters(monitor: Monitor) -> list[VoterSpec]:
    endpoints = {e.name: e for e in LLMEndpoint.objects.filter(
        name__in=[v["endpoint"] for v in monitor.spec["labeling"]["voters"]])}
    try:
        return [VoterSpec(endpoints[v["endpoint"]], v["model"], v.get("temperature", 0.0), v.get("seed"))
                for v in monitor.spec["labeling"]["voters"]]
    except KeyError as exc:
        raise ApplicationError(f"labeling.voters: no LLM endpoint {exc.args[0]!r}") from exc


def _kick(action) -> None:
    """Start or resume a run. With eager Celery the chunks run right here, and a chunk left
    with pending calls raises: the run's row already says why, which the next advance reads."""
    try:
        action()
    except (EndpointUnavailable, Retry) as exc:
        logger.info("run chunk left work pending: %s", exc)


def _stage_label(cycle: Cycle, owner: str) -> float:
    monitor, user = cycle.monitor, cycle.monitor.created_by
    if not cycle.cycle_runs.exists():
        versions = _versions(cycle)
        with transaction.atomic():
            _still_mine(cycle.pk, owner)
            for policy_version, prompt, primary in versions:
                CycleRun.objects.get_or_create(cycle=cycle, policy_version=policy_version,
                                               defaults={"prompt_version": prompt, "is_primary": primary})
    runs = []
    for cr in cycle.cycle_runs.select_related("policy_version", "prompt_version", "run"):
        run = cr.run or LabelingRun.objects.filter(name=run_name(cycle, cr.policy_version)).first()
        if run is None:
            spec = monitor.spec
            try:
                run = labeling_run_create(
                    name=run_name(cycle, cr.policy_version), sample=cycle.sample, prompt_version=cr.prompt_version,
                    voters=_voters(monitor), confidence_threshold=spec["labeling"]["confidence_threshold"],
                    audit_share=spec["audit"]["share"], audit_seed=cycle.seed,
                    max_attempts=spec["labeling"]["max_attempts"], chunk_size=spec["labeling"]["chunk_size"],
                    allow_retired=not cr.is_primary, acting_user=user)
            except RunConfigurationError:
                run = LabelingRun.objects.filter(name=run_name(cycle, cr.policy_version)).first()
                if run is None:
                    raise
        if cr.run_id is None:
            CycleRun.objects.filter(pk=cr.pk).update(run=run)
        if run.status == RunStatus.DRAFT:
            _kick(lambda run=run: labeling_run_start(run=run, acting_user=user))
        elif run.status == RunStatus.RUNNING and run.heartbeat_at and (
                timezone.now() - run.heartbeat_at).total_seconds() > settings.MONITOR_RUN_STALE_SECONDS:
            _kick(lambda run=run: labeling_run_resume(run=run, acting_user=user))  # re-queue its pending chunks
        run.refresh_from_db()
        runs.append(run)
    broken = [r for r in runs if r.status in (RunStatus.FAILED, RunStatus.CANCELLED)]
    if broken:
        raise ApplicationError(f"run {broken[0].name} is {broken[0].status}"
                               + (f": {broken[0].status_detail}" if broken[0].status_detail else ""))
    paused = [r for r in runs if r.status == RunStatus.PAUSED]
    if paused:
        raise CycleWait(f"run {paused[0].name} is paused: resume it to go on")
    if all(r.status == RunStatus.FINISHED for r in runs):
        _move(cycle.pk, owner, state=CycleState.REVIEWING, event="labeled", labeled_at=timezone.now())
        return 0
    troubled = [r for r in runs if r.status_detail]
    if troubled:
        run = troubled[0]
        endpoints = ", ".join(sorted(set(run.voters.values_list("endpoint__name", flat=True))))
        since = cycle.waiting_since or timezone.now()
        raise CycleWait(f"LLM endpoint {endpoints} unreachable since {since:%Y-%m-%d %H:%M} UTC: {run.status_detail}")
    if cycle.state != CycleState.LABELING:
        _move(cycle.pk, owner, state=CycleState.LABELING)
    return settings.MONITOR_POLL_SECONDS


# --- reviewing -----------------------------------------------------------------------------------


def _queue_for(monitor: Monitor, policy_version: PolicyVersion) -> ReviewQueue | None:
    """The monitor's queue if it reviews this version; else its vendor's queue of the same
    purpose for this version (a new version gets a new queue), if there is one."""
    queue = monitor.review_queue
    if queue is None or queue.policy_version_id == policy_version.pk:
        return queue
    return ReviewQueue.objects.filter(vendor_id=queue.vendor_id, purpose=queue.purpose,
                                      policy_version=policy_version).order_by("pk").first()


def push_audit_items(*, queue: ReviewQueue, item_ids: list[int], acting_user) -> None:
    """Send routed items to the review queue once (``review_queue_push`` skips items the queue
    has); no waiting inside: Label Studio down is the cycle's wait, not the worker's."""
    review_queue_push(queue=queue, item_ids=item_ids, retry_for=0, acting_user=acting_user)


def _routed(run: LabelingRun) -> list[int]:
    return list(run.decisions.filter(outcome=DecisionOutcome.HUMAN_REVIEW).order_by("item_id")
                .values_list("item_id", flat=True))


def _stage_review(cycle: Cycle, owner: str) -> float:
    monitor = cycle.monitor
    cycle_runs = list(cycle.cycle_runs.select_related("policy_version", "run"))
    for cr in cycle_runs:
        if cr.pushed_at is not None:
            continue
        queue = _queue_for(monitor, cr.policy_version)
        routed = _routed(cr.run)
        if queue is not None and routed:
            try:
                push_audit_items(queue=queue, item_ids=routed, acting_user=monitor.created_by)
            except (LabelStudioUnavailable, LabelStudioNotConfigured) as exc:
                raise CycleWait(f"Label Studio down: {exc.message}; {len(routed)} items of run {cr.run.name} wait "
                                f"to be pushed to queue {queue.name}") from exc
        CycleRun.objects.filter(pk=cr.pk).update(pushed_at=timezone.now())
    now = timezone.now()
    deadline = cycle.label_deadline_at
    if deadline is None:
        deadline = now + datetime.timedelta(hours=float(monitor.spec["audit"]["label_deadline_hours"]))
        Cycle.objects.filter(pk=cycle.pk).update(label_deadline_at=deadline)
    total = labelled = 0
    for cr in cycle_runs:
        routed = _routed(cr.run)
        taxonomy = {label.key for label in policy_version_spec(cr.policy_version).labels}
        total += len(routed)
        labelled += len(final_human_labels(policy_version_id=cr.policy_version_id, item_ids=routed,
                                           taxonomy=taxonomy).final)
    Cycle.objects.filter(pk=cycle.pk).update(audit_items=total, labels_in=labelled)
    if labelled >= total:
        _move(cycle.pk, owner, state=CycleState.ESTIMATING, event="reviewed", reviewed_at=now,
              audit_items=total, labels_in=labelled, label_deadline_at=deadline)
        return 0
    if now >= deadline:
        _move(cycle.pk, owner, state=CycleState.ESTIMATING, event="deadline_passed", reviewed_at=now,
              audit_items=total, labels_in=labelled, label_deadline_at=deadline, estimated_with_pending=True)
        return 0
    raise CycleWait(f"{labelled} of {total} audit labels in; deadline {deadline:%Y-%m-%d %H:%M} UTC",
                    delay=(deadline - now).total_seconds())


# --- estimating ----------------------------------------------------------------------------------


def _golden(monitor: Monitor):
    golden = monitor.spec["estimates"].get("golden_set")
    if not golden:
        return None
    name, _, number = golden.partition("@")
    return goldset_version_get(name=name, number=int(number) if number else None)


def _agreement(rows: list[PrevalenceEstimate]) -> dict:
    preferred = [r for r in rows if r.label == "any violation"] or rows
    if not preferred:
        return {}
    agreement = preferred[0].agreement or {}
    return {"label": preferred[0].label, "audit": agreement.get("audit"), "golden_set": agreement.get("golden_set")}


def _stage_estimate(cycle: Cycle, owner: str) -> float:
    monitor = cycle.monitor
    spec = monitor.spec["estimates"]
    for cr in cycle.cycle_runs.select_related("run", "run__prompt_version__policy_version").filter(
            estimated_at__isnull=True):
        # Items whose voter failed for good have no label either: missing at random, as pending ones.
        failed = cr.run.decisions.filter(outcome=DecisionOutcome.FAILED).exists()
        request = PrevalenceRequest(estimators=tuple(spec["estimators"]),
                                    labels=tuple(spec["labels"]) if spec.get("labels") else None,
                                    alpha=float(spec["alpha"]), allow_pending=cycle.estimated_with_pending or failed)
        with transaction.atomic():
            _still_mine(cycle.pk, owner)  # checked, then made: the lease keeps other workers out meanwhile
            rows = list(PrevalenceEstimate.objects.filter(run=cr.run, sample=cycle.sample))
        if not rows:
            _heartbeat(cycle.pk, owner)
            rows = prevalence_estimate_create(sample=cycle.sample, run=cr.run, request=request,
                                              golden_set_version=_golden(monitor), acting_user=monitor.created_by)
        with transaction.atomic():
            _still_mine(cycle.pk, owner)
            cr.estimates.set(rows)
            CycleRun.objects.filter(pk=cr.pk).update(estimated_at=timezone.now(), agreement=_agreement(rows))
    run_ids = list(cycle.cycle_runs.values_list("run_id", flat=True))
    totals = LLMCall.objects.filter(run_id__in=run_ids).aggregate(i=Sum("input_tokens"), o=Sum("output_tokens"),
                                                                 c=Sum("cost"))
    with transaction.atomic():
        locked = _still_mine(cycle.pk, owner)
        fired = cycle_alerts_evaluate(cycle=locked)
        _move(cycle.pk, owner, state=CycleState.DONE, event="done", estimated_at=timezone.now(),
              finished_at=timezone.now(), input_tokens=totals["i"] or 0, output_tokens=totals["o"] or 0,
              cost=totals["c"] or Decimal(0))
    logger.info("cycle %s done: %d alerts", cycle, len(fired))
    return None  # type: ignore[return-value]


STAGES = {CycleState.DRAWING: _stage_draw, CycleState.LABELING: _stage_label, CycleState.REVIEWING: _stage_review,
          CycleState.ESTIMATING: _stage_estimate}
