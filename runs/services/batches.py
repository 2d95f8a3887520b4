"""Runs on the OpenAI Batch API: submit a chunk's pairs as one batch per endpoint, poll it,
ingest its results exactly once. Used instead of the real-time chunks when a run's executor
is ``batch``."""

from __future__ import annotations

import hashlib

import openai
from django.db import IntegrityError, transaction
from django.utils import timezone

from runs.llm.batch import (
    TERMINAL,
    batch_cancel,
    batch_file,
    batch_retrieve,
    batch_submit,
    file_text,
    read_results,
)
from runs.llm.executor import CallRecord, WorkResult
from runs.models import LabelingRun, LLMBatch, LLMBatchStatus, RunStatus
from runs.services.work import (
    EndpointUnavailable,
    endpoint_config,
    judgements_write,
    pending_work,
    run_finish_if_done,
    run_lock,
)
from touchstone.audit import audit_event_record
from touchstone.retry import backoff_seconds
from touchstone.tasks import enqueue_on_commit

OPEN = (LLMBatchStatus.SUBMITTING, LLMBatchStatus.SUBMITTED)
MAX_RESUBMISSIONS = 3  # an expired or provider-failed batch is resubmitted this many times


def _open_pairs(run: LabelingRun) -> set[tuple[int, int]]:
    return {tuple(pair) for pairs in run.batches.filter(status__in=OPEN).values_list("pairs", flat=True)
            for pair in pairs}


def enqueue_batch_work(run: LabelingRun, pending_items: list[int]) -> int:
    """Runs in a transaction: submit the pending items in chunks (on commit) and make sure every
    open batch has a poll coming. Items whose pairs all sit in open batches are not resubmitted."""
    in_flight = {item for item, _ in _open_pairs(run)}
    todo = [item for item in pending_items if item not in in_flight]
    for start in range(0, len(todo), run.chunk_size):
        enqueue_on_commit("runs.tasks.llm_batch_submit", run.pk, todo[start:start + run.chunk_size])
    for batch_id in run.batches.filter(status=LLMBatchStatus.SUBMITTED).values_list("pk", flat=True):
        enqueue_on_commit("runs.tasks.llm_batch_poll", batch_id)
    return len(pending_items)


def _claim(run: LabelingRun, endpoint_id: int, pairs: list[list[int]]) -> LLMBatch | None:
    """A SUBMITTING row for these pairs, or None when an open batch already has them (a
    redelivered task). A finished batch with the same pairs makes this a resubmission."""
    base = hashlib.sha256(f"{endpoint_id}:{pairs}".encode()).hexdigest()
    for attempt in range(MAX_RESUBMISSIONS + 1):
        key = base if attempt == 0 else f"{base}:{attempt}"
        existing = LLMBatch.objects.filter(run=run, chunk_key=key).first()
        if existing is not None:
            if existing.status in OPEN:
                return None
            continue
        try:
            with transaction.atomic():
                return LLMBatch.objects.create(run=run, endpoint_id=endpoint_id, chunk_key=key, pairs=pairs,
                                               request_count=len(pairs))
        except IntegrityError:  # a concurrent delivery claimed it first
            return None
    raise EndpointUnavailable(f"these {len(pairs)} pairs were submitted {MAX_RESUBMISSIONS + 1} times already")


def labeling_run_batch_submit(*, run_id: int, item_ids: list[int]) -> list[int]:
    """Submit the unjudged pairs of these items, one batch per endpoint; returns the ids of the
    batches to poll. Raises EndpointUnavailable when the provider cannot be reached (the task
    retries; the claim is released so the retry can submit)."""
    run = LabelingRun.objects.select_related("prompt_version").get(pk=run_id)
    if run.status != RunStatus.RUNNING:
        return []
    endpoints, by_endpoint = pending_work(run, item_ids, skip=_open_pairs(run))
    if not by_endpoint:
        with transaction.atomic():
            run_finish_if_done(run_lock(run))
        return []
    submitted = []
    for endpoint_id, works in by_endpoint.items():
        pairs = sorted([w.item_id, w.voter_id] for w in works)
        batch = _claim(run, endpoint_id, pairs)
        if batch is None:
            continue
        config = endpoint_config(endpoints[endpoint_id])
        try:
            input_file_id, remote = batch_submit(config, batch_file(works, run.prompt_version.output_schema),
                                                 {"touchstone_run": run.name, "touchstone_batch": str(batch.pk)})
        except openai.APIError as exc:
            batch.delete()
            LabelingRun.objects.filter(pk=run.pk).update(
                status_detail=f"waiting for the endpoint to accept a batch: {exc}"[:500])
            raise EndpointUnavailable(str(exc)) from exc
        LLMBatch.objects.filter(pk=batch.pk).update(
            status=LLMBatchStatus.SUBMITTED, remote_batch_id=remote.id, remote_status=remote.status,
            input_file_id=input_file_id)
        LabelingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now(), status_detail="")
        submitted.append(batch.pk)
    return submitted


def poll_delay(polls: int) -> float:
    """Poll soon, then less often: 2 s doubling to a minute (the one backoff policy)."""
    return backoff_seconds(polls + 1, base=2.0, cap=60.0)


def labeling_run_batch_poll(*, batch_id: int) -> float | None:
    """Check one batch; ingest its results once when complete. Returns the seconds until the
    next poll, or None when the batch needs no more polling."""
    batch = LLMBatch.objects.select_related("run__prompt_version", "endpoint").get(pk=batch_id)
    run = batch.run
    if batch.status != LLMBatchStatus.SUBMITTED:
        return None
    config = endpoint_config(batch.endpoint)
    if run.status == RunStatus.CANCELLED:
        try:
            batch_cancel(config, batch.remote_batch_id)
        except openai.APIError as exc:  # the run is over either way; say why the remote may linger
            LLMBatch.objects.filter(pk=batch.pk).update(error=f"cancel failed: {exc}"[:2000])
        LLMBatch.objects.filter(pk=batch.pk, status=LLMBatchStatus.SUBMITTED).update(status=LLMBatchStatus.CANCELLED)
        return None
    try:
        remote = batch_retrieve(config, batch.remote_batch_id)
    except openai.APIError as exc:
        raise EndpointUnavailable(str(exc)) from exc
    LLMBatch.objects.filter(pk=batch.pk).update(polls=batch.polls + 1, remote_status=remote.status)
    LabelingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())
    if remote.status not in TERMINAL or run.status == RunStatus.PAUSED:
        return poll_delay(batch.polls + 1)
    if remote.status == "completed":
        try:
            text = "\n".join(file_text(config, file_id) for file_id in (remote.output_file_id, remote.error_file_id)
                             if file_id)
        except openai.APIError as exc:
            raise EndpointUnavailable(str(exc)) from exc
        results = read_results(text, endpoint=config, schema=run.prompt_version.output_schema)
        answered = {(r.item_id, r.voter_id) for r in results}
        results += [WorkResult(item, voter, "failed", error="the batch output has no result for this request",
                               calls=[CallRecord(1, "missing")])
                    for item, voter in batch.pairs if (item, voter) not in answered]
        with transaction.atomic():
            # The conditional update is the claim: a second poll of the same batch ingests nothing.
            if not LLMBatch.objects.filter(pk=batch.pk, status=LLMBatchStatus.SUBMITTED).update(
                    status=LLMBatchStatus.INGESTED, output_file_id=remote.output_file_id or "",
                    error_file_id=remote.error_file_id or ""):
                return None
            judgements_write(run, results)
            audit_event_record(actor=None, event_type="labeling_run.batch_ingested", obj=run,
                               details={"batch": remote.id, "results": len(results)})
    else:
        reason = remote.errors or f"the provider reports the batch {remote.status}"
        with transaction.atomic():
            if not LLMBatch.objects.filter(pk=batch.pk, status=LLMBatchStatus.SUBMITTED).update(
                    status=LLMBatchStatus.FAILED, error=reason[:2000]):
                return None
            if remote.status == "failed" and remote.errors:  # the provider rejected the requests themselves
                judgements_write(run, [WorkResult(item, voter, "failed", error=f"batch rejected: {reason}"[:2000],
                                                calls=[CallRecord(1, "batch_failed")])
                                     for item, voter in batch.pairs])
            else:  # expired or cancelled by the provider: submit again
                enqueue_on_commit("runs.tasks.llm_batch_submit", run.pk, sorted({item for item, _ in batch.pairs}))
    with transaction.atomic():
        locked = run_lock(run)
        if locked.status == RunStatus.RUNNING:
            run_finish_if_done(locked)
    return None
