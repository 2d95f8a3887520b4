"""Labeling runs: create, estimate, start, pause, resume, cancel, retry failed, and the chunk
work a Celery task does. Every state change is audited; judgements are stored once per
(run, item, voter) by a unique constraint, so redelivered or re-run chunks change nothing."""

from __future__ import annotations

import asyncio
import base64
import math
import os
import queue
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.storage import default_storage
from django.db import close_old_connections, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from labeling.llm.executor import EndpointConfig, Work, WorkResult, execute, run_blocking
from labeling.llm.ratelimit import RateLimiter
from labeling.models import (
    ContentImage,
    ContentItem,
    ItemDecision,
    Judgement,
    JudgementStatus,
    LabelingRun,
    LLMCall,
    LLMEndpoint,
    RunStatus,
    RunVoter,
    Sample,
)
from labeling.routing import RoutingRules, Vote, decide
from policies.compiler import render_user_message
from policies.models import PromptVersion
from touchstone.audit import audit_event_record
from touchstone.errors import ApplicationError, InvalidStateTransition

ESTIMATED_OUTPUT_TOKENS = 80  # a judgement: label, confidence, a sentence of rationale, rule ids
TOKENS_PER_IMAGE = 85  # OpenAI's low-detail image cost; the estimate errs low for high detail
CACHE_MIN_TOKENS = 1024


class RunConfigurationError(ApplicationError):
    code = "run_configuration_error"


class EndpointUnavailable(Exception):
    """Transient trouble used every attempt for some pairs: the chunk is retried later."""


@dataclass(frozen=True)
class VoterSpec:
    endpoint: LLMEndpoint
    model: str
    temperature: float = 0.0
    seed: int | None = None


# --- create and estimate -----------------------------------------------------------------------

def _estimate_tokens(text_chars: int, images: int) -> int:
    return math.ceil(text_chars / 4) + TOKENS_PER_IMAGE * images


def run_estimate(run: LabelingRun) -> tuple[int, int, Decimal]:
    """(input tokens, output tokens, cost) before start; cached input priced as cached."""
    prompt = run.prompt_version
    items = ContentItem.objects.filter(sample_memberships__sample=run.sample).annotate(n_images=Count("images"))
    user_tokens = sum(_estimate_tokens(sum(len(v) for v in item.parts.values()) + 200, item.n_images)
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
        from labeling.llm.batch import BATCH_PRICE_FACTOR

        cost *= BATCH_PRICE_FACTOR
    return input_tokens, output_tokens, cost


@transaction.atomic(durable=True)
def labeling_run_create(*, name: str, sample: Sample, prompt_version: PromptVersion, voters: list[VoterSpec],
                        confidence_threshold: float = 0.7, audit_share: float = 0.05, audit_seed: int = 0,
                        max_attempts: int = 4, chunk_size: int = 100, executor: str = "realtime",
                        acting_user: AbstractBaseUser | None = None) -> LabelingRun:
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
                                "estimated_cost": str(run.estimated_cost)})
    return run


# --- state changes -------------------------------------------------------------------------------

def _lock(run: LabelingRun) -> LabelingRun:
    return LabelingRun.objects.select_for_update().get(pk=run.pk)


def _enqueue_pending(run: LabelingRun) -> int:
    """Queue chunks for every sampled item still missing a judgement. Runs in a transaction;
    the tasks are sent on commit."""
    from labeling.tasks import llm_run_chunk

    voters = run.voters.count()
    pending = list(run.sample.members.annotate(
        done=Count("item__judgements", filter=Q(item__judgements__run=run))).filter(done__lt=voters)
        .order_by("item_id").values_list("item_id", flat=True))
    if run.executor == "batch":
        from labeling.services.batches import enqueue_batch_work

        return enqueue_batch_work(run, pending)
    for start in range(0, len(pending), run.chunk_size):
        chunk = pending[start:start + run.chunk_size]
        transaction.on_commit(lambda chunk=chunk: llm_run_chunk.delay(run.pk, chunk))
    return len(pending)


def _transition(run: LabelingRun, allowed: tuple[str, ...], to: str, actor: AbstractBaseUser | None,
                event: str, **fields: Any) -> LabelingRun:
    run = _lock(run)
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
        _finish_if_done(run)
    return run


@transaction.atomic(durable=True)
def labeling_run_pause(*, run: LabelingRun, acting_user: AbstractBaseUser | None = None) -> LabelingRun:
    return _transition(run, (RunStatus.RUNNING,), RunStatus.PAUSED, acting_user, "paused")


@transaction.atomic(durable=True)
def labeling_run_resume(*, run: LabelingRun, acting_user: AbstractBaseUser | None = None) -> LabelingRun:
    run = _transition(run, (RunStatus.PAUSED, RunStatus.RUNNING), RunStatus.RUNNING, acting_user, "resumed",
                      heartbeat_at=timezone.now(), status_detail="")
    if _enqueue_pending(run) == 0:
        _finish_if_done(run)
    return run


@transaction.atomic(durable=True)
def labeling_run_cancel(*, run: LabelingRun, acting_user: AbstractBaseUser | None = None) -> LabelingRun:
    return _transition(run, (RunStatus.DRAFT, RunStatus.RUNNING, RunStatus.PAUSED), RunStatus.CANCELLED,
                       acting_user, "cancelled", finished_at=timezone.now())


@transaction.atomic(durable=True)
def labeling_run_retry_failed(*, run: LabelingRun, acting_user: AbstractBaseUser | None = None) -> int:
    """Drop failed judgements (the call ledger keeps their history) and label those items again."""
    run = _lock(run)
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
        _finish_if_done(run)
    return len(failed_items)


def _finish_if_done(run: LabelingRun) -> bool:
    """Runs in a transaction: finish the run when every pair has a judgement."""
    expected = run.sample.size * run.voters.count()
    if run.judgements.count() < expected:
        return False
    # Chunks decide their own items as they go; only the ones a crash left behind remain.
    undecided = run.sample.members.exclude(item_id__in=run.decisions.values("item_id"))
    _decide_items(run, list(undecided.values_list("item_id", flat=True)))
    LabelingRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
        status=RunStatus.FINISHED, finished_at=timezone.now(), status_detail="")
    audit_event_record(actor=None, event_type="labeling_run.finished", obj=run)
    return True


def _decide_items(run: LabelingRun, item_ids: list[int]) -> None:
    """Runs in a transaction: an ItemDecision for each item whose voters have all answered."""
    voters = list(run.voters.order_by("position").values_list("id", flat=True))
    rules = RoutingRules(
        confidence_threshold=run.confidence_threshold, audit_share=run.audit_share, audit_seed=run.audit_seed,
        always_review_labels=frozenset(run.prompt_version.policy_version.labels.filter(always_human_review=True)
                                       .values_list("key", flat=True)))
    votes: dict[int, dict[int, Judgement]] = defaultdict(dict)
    # "run" must be loaded too: the related manager sets it on each row, and a deferred
    # foreign key would cost one query per judgement.
    for judgement in run.judgements.filter(item_id__in=item_ids).only("run", "item", "voter", "status", "label",
                                                                      "confidence"):
        votes[judgement.item_id][judgement.voter_id] = judgement
    decided = set(run.decisions.filter(item_id__in=item_ids).values_list("item_id", flat=True))
    rows = []
    for item_id in item_ids:
        if item_id in decided or len(votes[item_id]) < len(voters):
            continue
        ordered = [votes[item_id][v] for v in voters]
        decision = decide(item_id, [Vote(j.label or None, j.confidence, j.status == JudgementStatus.FAILED)
                                    for j in ordered], rules)
        rows.append(ItemDecision(run=run, item_id=item_id, outcome=decision.outcome, reason=decision.reason,
                                 label=decision.label, confidence=decision.confidence,
                                 votes={str(i): {"label": j.label, "confidence": j.confidence, "status": j.status}
                                        for i, j in enumerate(ordered)}))
    ItemDecision.objects.bulk_create(rows, ignore_conflicts=True)


# --- the chunk work (called by the Celery task) ---------------------------------------------------

def endpoint_config(endpoint: LLMEndpoint) -> EndpointConfig:
    return EndpointConfig(
        key=str(endpoint.pk), base_url=endpoint.base_url, api_key=os.environ.get(endpoint.api_key_env, "not-set"),
        max_concurrency=endpoint.max_concurrency, requests_per_minute=endpoint.requests_per_minute,
        tokens_per_minute=endpoint.tokens_per_minute, timeout_seconds=endpoint.timeout_seconds,
        price_input=endpoint.price_input_per_million, price_cached_input=endpoint.price_cached_input_per_million,
        price_output=endpoint.price_output_per_million)


def _image_url(name: str) -> str:
    with default_storage.open(name) as handle:
        return "data:image/jpeg;base64," + base64.b64encode(handle.read()).decode()


def _messages(prompt: PromptVersion, parts: dict[str, str], target_part: str,
              image_files: list[str]) -> list[dict[str, Any]]:
    content = render_user_message(prompt.user_message_template, parts=parts,
                                  images=[_image_url(name) for name in image_files], target=target_part or None)
    # The system prompt comes first and is identical for every item: providers cache it.
    return [{"role": "system", "content": prompt.system_prompt}, {"role": "user", "content": content}]


class _StopFlag:
    """Polls the run's status from a thread, so the async loop never blocks on the database."""

    def __init__(self, run_id: int, interval: float = 1.0) -> None:
        self.run_id, self.interval = run_id, interval
        self.stopped = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        try:
            while not self._done.wait(self.interval):
                status = LabelingRun.objects.filter(pk=self.run_id).values_list("status", flat=True).first()
                if status in (RunStatus.PAUSED, RunStatus.CANCELLED, RunStatus.FAILED):
                    self.stopped = True
                    return
        finally:
            close_old_connections()

    def close(self) -> None:
        self._done.set()
        self._thread.join(timeout=5)


@dataclass
class ChunkOutcome:
    written: int = 0
    pending: int = 0
    skipped: bool = False
    reason: str = ""


def _write_results(run: LabelingRun, results: list[WorkResult]) -> int:
    done = [r for r in results if r.status in ("ok", "failed")]
    with transaction.atomic():
        created = Judgement.objects.bulk_create([
            Judgement(run=run, item_id=r.item_id, voter_id=r.voter_id, status=r.status, label=r.label,
                      confidence=r.confidence, rationale=r.rationale, violated_rule_ids=r.violated_rule_ids,
                      raw_response=r.raw_response[:20000], error=r.error[:2000], input_tokens=r.total("input_tokens"),
                      cached_tokens=r.total("cached_tokens"), output_tokens=r.total("output_tokens"),
                      latency_ms=r.total("latency_ms"), attempts=len(r.calls), cost=r.total("cost"),
                      simulated=r.simulated)
            for r in done], ignore_conflicts=True)
        LLMCall.objects.bulk_create([
            LLMCall(run=run, item_id=r.item_id, voter_id=r.voter_id, attempt=c.attempt, outcome=c.outcome,
                    input_tokens=c.input_tokens, cached_tokens=c.cached_tokens, output_tokens=c.output_tokens,
                    latency_ms=c.latency_ms, cost=c.cost)
            for r in results for c in r.calls], batch_size=1000)
        _decide_items(run, sorted({r.item_id for r in done}))
        LabelingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())
    return len(created)


class _ResultWriter:
    """Writes results in batches on a thread of its own while calls are still in flight, so
    the endpoint never waits for the database. A caller inside a transaction gets its writes
    in that transaction instead: on its own thread, at close."""

    _DONE = object()

    def __init__(self, run: LabelingRun, batch_size: int = 100, max_delay: float = 0.5) -> None:
        self.run, self.batch_size, self.max_delay = run, batch_size, max_delay
        self.written = 0
        self.error: Exception | None = None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._inline: list[WorkResult] | None = [] if transaction.get_connection().in_atomic_block else None
        self._thread: threading.Thread | None = None
        if self._inline is None:
            self._thread = threading.Thread(target=self._loop, name=f"run-{run.pk}-writer", daemon=True)
            self._thread.start()

    def put(self, result: WorkResult) -> None:
        if self._inline is not None:
            self._inline.append(result)
        else:
            self._queue.put(result)

    def _flush(self, batch: list[WorkResult]) -> None:
        try:
            self.written += _write_results(self.run, batch)
        except Exception as exc:  # e.g. a locked database: later batches may still land
            self.error = self.error or exc

    def _loop(self) -> None:
        batch: list[WorkResult] = []
        deadline = 0.0
        try:
            while True:
                try:
                    timeout = max(0.0, deadline - time.monotonic()) if batch else None
                    item = self._queue.get(timeout=timeout)
                except queue.Empty:
                    item = None
                if item is self._DONE:
                    break
                if item is not None:
                    if not batch:
                        deadline = time.monotonic() + self.max_delay
                    batch.append(item)
                if batch and (item is None or len(batch) >= self.batch_size):
                    self._flush(batch)
                    batch = []
            if batch:
                self._flush(batch)
        finally:
            connection.close()

    def close(self) -> int:
        """Write what is left; raises the first write error (the chunk is then retried, and
        its written pairs are skipped)."""
        if self._inline is not None:
            self._flush(self._inline)
            self._inline = []
        elif self._thread is not None:
            self._queue.put(self._DONE)
            self._thread.join()
        if self.error is not None:
            raise self.error
        return self.written


def pending_work(run: LabelingRun, item_ids: list[int],
                 skip: set[tuple[int, int]] | None = None) -> tuple[dict[int, LLMEndpoint], dict[int, list[Work]]]:
    """The (item, voter) pairs of these items without a judgement (and not in ``skip``),
    as Work grouped by endpoint id; and the endpoints."""
    voters = list(run.voters.select_related("endpoint"))
    done = set(run.judgements.filter(item_id__in=item_ids).values_list("item_id", "voter_id")) | (skip or set())
    # Plain rows, not model instances: this runs before every chunk's first call.
    images: dict[int, list[str]] = defaultdict(list)
    for item_id, name in ContentImage.objects.filter(item_id__in=item_ids).exclude(file="").order_by(
            "item_id", "position").values_list("item_id", "file"):
        images[item_id].append(name)
    prompt = run.prompt_version
    by_endpoint: dict[int, list[Work]] = defaultdict(list)
    for item_id, parts, target_part in ContentItem.objects.filter(pk__in=item_ids).order_by("pk").values_list(
            "pk", "parts", "target_part"):
        messages = _messages(prompt, parts, target_part, images[item_id])
        estimate = prompt.token_count + _estimate_tokens(sum(len(v) for v in parts.values()), len(images[item_id]))
        for voter in voters:
            if (item_id, voter.pk) in done:
                continue
            by_endpoint[voter.endpoint_id].append(Work(
                item_id=item_id, voter_id=voter.pk, model=voter.model, messages=messages,
                temperature=voter.temperature, seed=voter.seed if voter.seed is not None else prompt.seed,
                max_output_tokens=prompt.max_output_tokens, reasoning_effort=prompt.reasoning_effort or None,
                estimated_tokens=estimate + ESTIMATED_OUTPUT_TOKENS))
    return {v.endpoint_id: v.endpoint for v in voters}, by_endpoint


def labeling_run_chunk_execute(*, run_id: int, item_ids: list[int], redis_url: str | None = None) -> ChunkOutcome:
    """Judge the pairs of these items that have no judgement yet; write them in bulk.

    Safe to run twice or concurrently: finished pairs are skipped and the unique constraint
    drops duplicates. Raises EndpointUnavailable when transient errors left pairs pending.
    """
    run = LabelingRun.objects.select_related("prompt_version__policy_version", "sample").get(pk=run_id)
    if run.status != RunStatus.RUNNING:
        return ChunkOutcome(skipped=True, reason=f"run is {run.status}")
    endpoints, by_endpoint = pending_work(run, item_ids)
    if not by_endpoint:
        with transaction.atomic():
            _finish_if_done(_lock(run))
        return ChunkOutcome()
    prompt = run.prompt_version
    schema = prompt.output_schema
    stop = _StopFlag(run.pk)
    writer = _ResultWriter(run)
    broker = redis_url or settings.CELERY_BROKER_URL

    async def run_all() -> list[WorkResult]:
        limiters = {eid: RateLimiter(broker, str(eid), ep.requests_per_minute, ep.tokens_per_minute)
                    for eid, ep in endpoints.items()}
        try:
            batches = await asyncio.gather(*(
                execute(work, endpoint=endpoint_config(endpoints[eid]), schema=schema, limiter=limiters[eid],
                        max_attempts=run.max_attempts, should_stop=lambda: stop.stopped, on_result=writer.put)
                for eid, work in by_endpoint.items()))
        finally:
            for limiter in limiters.values():
                await limiter.close()
        return [result for batch in batches for result in batch]

    try:
        results = run_blocking(run_all())
    finally:
        stop.close()
        written = writer.close()
    pending = [r for r in results if r.status == "pending"]
    if pending and not stop.stopped:
        reason = pending[0].error or "transient errors"
        LabelingRun.objects.filter(pk=run.pk).update(
            status_detail=f"waiting for the endpoint: {len(pending)} calls pending after {run.max_attempts} "
                          f"attempts ({reason[:200]}); retrying")
        raise EndpointUnavailable(reason)
    with transaction.atomic():
        locked = _lock(run)
        if locked.status == RunStatus.RUNNING:
            if locked.status_detail:
                LabelingRun.objects.filter(pk=run.pk).update(status_detail="")
            _finish_if_done(locked)
    return ChunkOutcome(written=written, pending=len(pending))


def labeling_run_watchdog(*, stale_after_seconds: float = 600) -> list[str]:
    """Re-queue the pending work of running runs whose workers went quiet (a crash, a lost
    message). Idempotent: duplicate chunks skip what is done."""
    cutoff = timezone.now() - timezone.timedelta(seconds=stale_after_seconds)
    revived = []
    for run in LabelingRun.objects.filter(status=RunStatus.RUNNING, heartbeat_at__lt=cutoff):
        with transaction.atomic():
            locked = _lock(run)
            if locked.status != RunStatus.RUNNING:
                continue
            LabelingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())
            if _enqueue_pending(locked) == 0:
                _finish_if_done(locked)
            audit_event_record(actor=None, event_type="labeling_run.requeued", obj=locked)
        revived.append(run.name)
    return revived


def wait_seconds_for(attempt: int) -> float:
    """Backoff of a chunk whose endpoint is down: 5 s doubling to 5 minutes."""
    return min(300.0, 5.0 * 2 ** max(attempt, 0))

