"""Labeling runs: create, estimate, start, pause, resume, cancel, retry failed, and the watchdog
that re-queues the work of runs whose workers went quiet. Every state change is audited; the
chunk work itself is in ``runs.services.work``."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from content.models import ContentItem, Sample
from policies.models import PolicyVersionStatus, PromptVersion
from runs.llm.batch import BATCH_PRICE_FACTOR
from runs.models import JudgementStatus, LabelingRun, LLMEndpoint, RunStatus, RunVoter
from runs.services.batches import enqueue_batch_work
from runs.services.work import ESTIMATED_OUTPUT_TOKENS, estimate_tokens, run_finish_if_done, run_lock
from touchstone.audit import audit_event_record
from touchstone.errors import ApplicationError, InvalidStateTransition
from touchstone.roles import permission_require
from touchstone.tasks import enqueue_on_commit

CACHE_MIN_TOKENS = 1024


class RunConfigurationError(ApplicationError):
    code = "run_configuration_error"


@dataclass(frozen=True)
class VoterSpec:
    endpoint: LLMEndpoint
    model: str
    temperature: float = 0.0
    seed: int | None = None


# --- create and estimate -----------------------------------------------------------------------


def run_estimate(run: LabelingRun) -> tuple[int, int, Decimal]:
    """(input tokens, output tokens, cost) before start; cached input priced as cached."""
    prompt = run.prompt_version
    items = ContentItem.objects.filter(sample_memberships__sample=run.sample).annotate(n_images=Count("images"))
    user_tokens = sum(estimate_tokens(sum(len(v) for v in item.parts.values()) + 200, item.n_images)
                      for item in items.only("parts"))
    count = run.sample.size
    input_tokens = output_tokens = 0
    cost = Decimal(0)
    for voter in run.voters.select_related("endpoint"):
        voter_in = prompt.token_count * count + user_tokens
        cached = prompt.token_count * max(count - 1, 0) if prompt.token_count >= CACHE_MIN_TOKENS else 0
        voter_out = ESTIMATED_OUTPUT_TOKENS * count
        input_tokens += voter_in
        output_tokens += voter_out
        ep = voter.endpoint
        cost += (Decimal(voter_in - cached) * ep.price_input_per_million
                 + Decimal(cached) * ep.price_cached_input_per_million
                 + Decimal(voter_out) * ep.price_output_per_million) / Decimal(1_000_000)
    if run.executor == "batch":
        cost *= BATCH_PRICE_FACTOR
    return input_tokens, output_tokens, cost


@transaction.atomic(durable=True)
def labeling_run_create(*, name: str, sample: Sample, prompt_version: PromptVersion, voters: list[VoterSpec],
                        confidence_threshold: float = 0.7, audit_share: float = 0.05, audit_seed: int = 0,
                        max_attempts: int = 4, chunk_size: int = 100, executor: str = "realtime",
                        allow_retired: bool = False, acting_user: AbstractBaseUser | None = None) -> LabelingRun:
    """A run of ``voters`` over ``sample`` with ``prompt_version``. A prompt compiled from a policy
    version that is no longer published (retired, or not yet published) needs ``allow_retired``:
    labels made under an outdated policy are rarely what was meant."""
    if not voters:
        raise RunConfigurationError("a run needs at least one voter")
    if LabelingRun.objects.filter(name=name).exists():
        raise RunConfigurationError(f"a run named {name!r} exists already")
    if not 0 <= audit_share <= 1 or not 0 <= confidence_threshold <= 1:
        raise RunConfigurationError("audit share and confidence threshold must be within 0..1")
    if chunk_size < 1 or max_attempts < 1:
        raise RunConfigurationError("chunk size and max attempts must be at least 1")
    if executor not in ("realtime", "batch"):
        raise RunConfigurationError(f"executor must be realtime or batch, not {executor!r}")
    if executor == "batch":
        without = sorted({v.endpoint.name for v in voters if not v.endpoint.supports_batch})
        if without:
            raise RunConfigurationError(f"the batch executor needs endpoints with the Batch API; "
                                        f"{', '.join(without)} do not offer it (supports_batch)")
    policy_version = prompt_version.policy_version
    if policy_version.status != PolicyVersionStatus.PUBLISHED and not allow_retired:
        raise RunConfigurationError(
            f"prompt {prompt_version.sha256[:12]} was compiled from {policy_version}, which is "
            f"{policy_version.status}, not published; label with the published version's prompt, or pass "
            "--allow-retired to label under it anyway")
    run = LabelingRun.objects.create(
        name=name, sample=sample, prompt_version=prompt_version, confidence_threshold=confidence_threshold,
        audit_share=audit_share, audit_seed=audit_seed, max_attempts=max_attempts, chunk_size=chunk_size,
        executor=executor, created_by=acting_user)
    RunVoter.objects.bulk_create(RunVoter(run=run, position=i, endpoint=v.endpoint, model=v.model,
                                          temperature=v.temperature, seed=v.seed) for i, v in enumerate(voters))
    run.estimated_input_tokens, run.estimated_output_tokens, run.estimated_cost = run_estimate(run)
    run.save(update_fields=["estimated_input_tokens", "estimated_output_tokens", "estimated_cost"])
    audit_event_record(actor=acting_user, event_type="labeling_run.created", obj=run,
                       details={"voters": [f"{v.model}@{v.endpoint.name}" for v in voters],
                                "estimated_cost": str(run.estimated_cost),
                                "policy_version": str(policy_version), "policy_status": policy_version.status})
    return run


# --- state changes -------------------------------------------------------------------------------


def _enqueue_pending(run: LabelingRun) -> int:
    """Queue chunks for every sampled item still missing a judgement. Runs in a transaction;
    the tasks are sent on commit."""
    voters = run.voters.count()
    pending = list(run.sample.members.annotate(
        done=Count("item__judgements", filter=Q(item__judgements__run=run))).filter(done__lt=voters)
        .order_by("item_id").values_list("item_id", flat=True))
    if run.executor == "batch":
        return enqueue_batch_work(run, pending)
    for start in range(0, len(pending), run.chunk_size):
        enqueue_on_commit("runs.tasks.llm_run_chunk", run.pk, pending[start:start + run.chunk_size])
    return len(pending)


def _transition(run: LabelingRun, allowed: tuple[str, ...], to: str, actor: AbstractBaseUser | None,
                event: str, **fields: Any) -> LabelingRun:
    run = run_lock(run)
    if run.status not in allowed:
        raise InvalidStateTransition(f"run {run.name!r} is {run.status}; cannot {event}")
    run.status = to
    for name, value in fields.items():
        setattr(run, name, value)
    run.save()
    audit_event_record(actor=actor, event_type=f"labeling_run.{event}", obj=run)
    return run


@transaction.atomic(durable=True)
def labeling_run_start(*, run: LabelingRun, acting_user: AbstractBaseUser | None = None) -> LabelingRun:
    """draft → running; the prompt version is marked used and becomes permanent."""
    run = _transition(run, (RunStatus.DRAFT,), RunStatus.RUNNING, acting_user, "started",
                      started_at=timezone.now(), heartbeat_at=timezone.now(), status_detail="")
    PromptVersion.objects.filter(pk=run.prompt_version_id, first_used_at__isnull=True)._mark(
        first_used_at=timezone.now())
    if _enqueue_pending(run) == 0:
        run_finish_if_done(run)
    return run


@transaction.atomic(durable=True)
def labeling_run_pause(*, run: LabelingRun, acting_user: AbstractBaseUser | None = None) -> LabelingRun:
    return _transition(run, (RunStatus.RUNNING,), RunStatus.PAUSED, acting_user, "paused")


@transaction.atomic(durable=True)
def labeling_run_resume(*, run: LabelingRun, acting_user: AbstractBaseUser | None = None) -> LabelingRun:
    run = _transition(run, (RunStatus.PAUSED, RunStatus.RUNNING), RunStatus.RUNNING, acting_user, "resumed",
                      heartbeat_at=timezone.now(), status_detail="")
    if _enqueue_pending(run) == 0:
        run_finish_if_done(run)
    return run


@transaction.atomic(durable=True)
def labeling_run_cancel(*, run: LabelingRun, acting_user: AbstractBaseUser | None = None) -> LabelingRun:
    return _transition(run, (RunStatus.DRAFT, RunStatus.RUNNING, RunStatus.PAUSED), RunStatus.CANCELLED,
                       acting_user, "cancelled", finished_at=timezone.now())


@transaction.atomic(durable=True)
def labeling_run_retry_failed(*, run: LabelingRun, acting_user: AbstractBaseUser | None = None) -> int:
    """Drop failed judgements (the call ledger keeps their history) and label those items again.

    Raises PermissionDenied when ``acting_user`` may not change labeling runs."""
    if acting_user is not None:
        permission_require(acting_user, "runs.change_labelingrun", to="retry a run's failed items")
    run = run_lock(run)
    if run.status not in (RunStatus.FINISHED, RunStatus.RUNNING, RunStatus.PAUSED, RunStatus.FAILED):
        raise InvalidStateTransition(f"run {run.name!r} is {run.status}; nothing to retry")
    failed_items = set(run.judgements.filter(status=JudgementStatus.FAILED).values_list("item_id", flat=True))
    run.judgements.filter(status=JudgementStatus.FAILED).delete()
    run.decisions.filter(item_id__in=failed_items).delete()
    run.status, run.finished_at, run.heartbeat_at, run.status_detail = RunStatus.RUNNING, None, timezone.now(), ""
    run.save()
    audit_event_record(actor=acting_user, event_type="labeling_run.retry_failed", obj=run,
                       details={"items": len(failed_items)})
    if _enqueue_pending(run) == 0:  # nothing failed: finish again rather than wait for the watchdog
        run_finish_if_done(run)
    return len(failed_items)




def labeling_run_watchdog(*, stale_after_seconds: float = 600) -> list[str]:
    """Re-queue the pending work of running runs whose workers went quiet (a crash, a lost
    message). Idempotent: duplicate chunks skip what is done."""
    cutoff = timezone.now() - timezone.timedelta(seconds=stale_after_seconds)
    revived = []
    for run in LabelingRun.objects.filter(status=RunStatus.RUNNING, heartbeat_at__lt=cutoff):
        with transaction.atomic():
            locked = run_lock(run)
            if locked.status != RunStatus.RUNNING:
                continue
            LabelingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())
            if _enqueue_pending(locked) == 0:
                run_finish_if_done(locked)
            audit_event_record(actor=None, event_type="labeling_run.requeued", obj=locked)
        revived.append(run.name)
    return revived


