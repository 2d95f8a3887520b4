"""The work of a labeling run's chunks, shared by the real-time and the batch executors: which
(item, voter) pairs still need a judgement, the messages for them, writing judgements and
deciding items once, finishing the run. Every write is idempotent: judgements are unique per
(run, item, voter) and decisions per (run, item), so redelivered chunks change nothing."""

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
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from content.models import ContentImage, ContentItem
from policies.compiler import render_user_message
from policies.models import PromptVersion
from runs.llm.executor import EndpointConfig, Work, WorkResult, execute, run_blocking
from runs.llm.ratelimit import RateLimiter
from runs.models import ItemDecision, Judgement, JudgementStatus, LabelingRun, LLMCall, LLMEndpoint, RunStatus
from runs.routing import RoutingRules, Vote, decide
from touchstone.audit import audit_event_record

ESTIMATED_OUTPUT_TOKENS = 80  # a judgement: label, confidence, a sentence of rationale, rule ids
TOKENS_PER_IMAGE = 85  # OpenAI's low-detail image cost; the estimate errs low for high detail


class EndpointUnavailable(Exception):
    """Transient trouble used every attempt for some pairs: the chunk is retried later."""


def estimate_tokens(text_chars: int, images: int) -> int:
    return math.ceil(text_chars / 4) + TOKENS_PER_IMAGE * images


def run_lock(run: LabelingRun) -> LabelingRun:
    return LabelingRun.objects.select_for_update().get(pk=run.pk)


def run_finish_if_done(run: LabelingRun) -> bool:
    """Runs in a transaction: finish the run when every pair has a judgement."""
    expected = run.sample.size * run.voters.count()
    if run.judgements.count() < expected:
        return False
    # Chunks decide their own items as they go; only the ones a crash left behind remain.
    undecided = run.sample.members.exclude(item_id__in=run.decisions.values("item_id"))
    items_decide(run, list(undecided.values_list("item_id", flat=True)))
    LabelingRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
        status=RunStatus.FINISHED, finished_at=timezone.now(), status_detail="")
    audit_event_record(actor=None, event_type="labeling_run.finished", obj=run)
    return True


def items_decide(run: LabelingRun, item_ids: list[int]) -> None:
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


def judgements_write(run: LabelingRun, results: list[WorkResult]) -> int:
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
        items_decide(run, sorted({r.item_id for r in done}))
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
            self.written += judgements_write(self.run, batch)
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
        estimate = prompt.token_count + estimate_tokens(sum(len(v) for v in parts.values()), len(images[item_id]))
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
            run_finish_if_done(run_lock(run))
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
        locked = run_lock(run)
        if locked.status == RunStatus.RUNNING:
            if locked.status_detail:
                LabelingRun.objects.filter(pk=run.pk).update(status_detail="")
            run_finish_if_done(locked)
    return ChunkOutcome(written=written, pending=len(pending))
