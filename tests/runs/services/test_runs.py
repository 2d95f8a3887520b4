"""Labeling runs end to end against the simulator (real openai client, real Redis limiter),
with tasks executed eagerly: judgements once per pair, routing, cost, faults, pause, outage."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
from celery.exceptions import Retry
from django.db import transaction

from content.models import ContentItem
from content.services.sampling import sample_create
from demo import devstack
from policies.compiler import ModelSettings
from policies.models import PromptTemplateVersion
from policies.services import prompt_version_compile
from runs.llm.output import InvalidLLMOutput, parse_judgement
from runs.models import Judgement, JudgementStatus, LabelingRun, LLMCall, LLMEndpoint, RunStatus
from runs.routing import RoutingRules, Vote, decide
from runs.services.runs import (
    VoterSpec,
    labeling_run_cancel,
    labeling_run_create,
    labeling_run_pause,
    labeling_run_resume,
    labeling_run_retry_failed,
    labeling_run_start,
)
from runs.services.work import EndpointUnavailable, labeling_run_chunk_execute
from simulator.engine import SimulatorConfig, parse_models, text_sha256
from simulator.server import serve_in_thread
from tests.content.users import sampler
from touchstone.errors import InvalidStateTransition

pytestmark = pytest.mark.django_db
ITEMS = 24


def simulator(**config):
    texts = {f"message {i} for the run": ("insult" if i % 3 == 0 else "not_harassment") for i in range(ITEMS)}
    cfg = SimulatorConfig(models=parse_models(["sim-strong:0.95", "sim-medium:0.85", "sim-weak:0.7"]),
                          answer_key={text_sha256(t): label for t, label in texts.items()}, retry_after_seconds=0.05,
                          **config)
    server, _ = serve_in_thread(cfg)
    return server, texts


@pytest.fixture
def setup(published, approver):
    def make(sim_config: dict | None = None, base_url: str | None = None, max_attempts: int = 4, voters=None):
        server, texts = simulator(**(sim_config or {}))
        url = base_url or f"http://127.0.0.1:{server.server_address[1]}/v1"
        endpoint = LLMEndpoint.objects.create(name=f"sim-{LLMEndpoint.objects.count()}", base_url=url,
                                              is_simulator=True, max_concurrency=8, timeout_seconds=2,
                                              price_input_per_million=Decimal("1.00"),
                                              price_cached_input_per_million=Decimal("0.10"),
                                              price_output_per_million=Decimal("4.00"))
        if not ContentItem.objects.exists():
            ContentItem.objects.bulk_create(
                ContentItem(source="t", external_id=str(i), parts={"agent": "Hi!", "user": text}, target_part="user",
                            content_sha256=text_sha256(text), metadata={"bot": "A" if i % 2 else "B"})
                for i, text in enumerate(texts))
            sample_create(name="all", method="stratified", size=ITEMS, seed=1, stratify_by="bot", acting_user=sampler())
        tv = PromptTemplateVersion.objects.get(template__key="json_classifier")
        prompt, _ = prompt_version_compile(policy_version=published, template_version=tv,
                                           settings=ModelSettings(model="sim-strong", seed=11), acting_user=None)
        from content.models import Sample

        run = labeling_run_create(
            name=f"run-{LabelingRun.objects.count()}", sample=Sample.objects.get(name="all"), prompt_version=prompt,
            voters=voters or [VoterSpec(endpoint, m) for m in ("sim-strong", "sim-medium", "sim-weak")],
            confidence_threshold=0.8, audit_share=0.1, audit_seed=5, max_attempts=max_attempts, chunk_size=10,
            acting_user=approver)
        return run, server
    servers = []

    def factory(**kwargs):
        run, server = make(**kwargs)
        servers.append(server)
        return run

    yield factory
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_run_labels_every_item_once_per_voter_and_routes_it(setup, eager_celery, django_capture_on_commit_callbacks):
    run = setup()
    assert run.estimated_input_tokens > 0 and run.estimated_cost > 0
    with django_capture_on_commit_callbacks(execute=True):
        labeling_run_start(run=run)
    run.refresh_from_db()
    assert run.status == RunStatus.FINISHED, run.status_detail
    assert run.judgements.count() == ITEMS * 3
    assert run.judgements.filter(status=JudgementStatus.OK).count() == ITEMS * 3
    assert run.decisions.count() == ITEMS
    assert all(j.simulated for j in run.judgements.all())
    reasons = {d.reason for d in run.decisions.all()}
    assert reasons <= {"agreed", "disagreement", "low_confidence", "audit"} and "disagreement" in reasons
    assert run.prompt_version.first_used_at is not None or run.prompt_version.__class__.objects.get(
        pk=run.prompt_version_id).first_used_at is not None
    calls = LLMCall.objects.filter(run=run)
    assert calls.count() == ITEMS * 3 and sum(c.cost for c in calls) > 0
    cached = sum(c.cached_tokens for c in calls)
    assert cached > 0  # the shared system prompt prefix is cached after the first call
    # Running a chunk again writes nothing new.
    item_ids = list(run.sample.members.values_list("item_id", flat=True))
    labeling_run_resume(run=run) if run.status == RunStatus.PAUSED else None
    LabelingRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    outcome = labeling_run_chunk_execute(run_id=run.pk, item_ids=item_ids)
    assert outcome.written == 0 and Judgement.objects.filter(run=run).count() == ITEMS * 3


def drive(capture, action) -> None:
    """Run ``action`` and the chunk tasks it queues; a chunk left with pending calls raises
    Retry (eagerly) and the rest of its callbacks wait for the next resume."""
    try:
        with capture(execute=True):
            action()
    except (EndpointUnavailable, Retry):
        pass


def drive_until_finished(capture, run, action) -> None:
    """``action``, then resume (as the retrying chunks would) until the run finishes."""
    drive(capture, action)
    for _ in range(15):
        run.refresh_from_db()
        if run.status == RunStatus.FINISHED:
            return
        drive(capture, lambda: labeling_run_resume(run=run))


def test_faults_end_labelled_or_failed_with_reason_and_retry_failed_works(
        setup, eager_celery, django_capture_on_commit_callbacks):
    run = setup(sim_config={"fault_rate": 0.4, "fault_kinds": ("malformed", "refusal", "truncated", "500", "429")},
                max_attempts=2)
    drive_until_finished(django_capture_on_commit_callbacks, run, lambda: labeling_run_start(run=run))
    run.refresh_from_db()
    assert run.status == RunStatus.FINISHED
    failed = run.judgements.filter(status=JudgementStatus.FAILED)
    assert failed.exists()
    for judgement in failed:
        assert judgement.error.startswith("invalid output:") and judgement.attempts == 2
    assert run.decisions.filter(outcome="failed").count() == failed.values("item").distinct().count()
    assert LLMCall.objects.filter(run=run).exclude(outcome="ok").exists()
    failed_before = failed.count()
    drive_until_finished(django_capture_on_commit_callbacks, run, lambda: labeling_run_retry_failed(run=run))
    run.refresh_from_db()
    assert run.status == RunStatus.FINISHED and run.judgements.count() == ITEMS * 3
    assert run.decisions.count() == ITEMS
    assert run.judgements.filter(status=JudgementStatus.FAILED).count() < failed_before


def test_an_unreachable_endpoint_leaves_work_pending_with_a_visible_reason(setup, eager_celery):
    closed = devstack.free_port()
    run = setup(base_url=f"http://127.0.0.1:{closed}/v1", max_attempts=1)
    LabelingRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    item_ids = list(run.sample.members.values_list("item_id", flat=True))[:3]
    with pytest.raises(EndpointUnavailable):
        labeling_run_chunk_execute(run_id=run.pk, item_ids=item_ids)
    run.refresh_from_db()
    assert run.judgements.count() == 0
    assert run.status_detail.startswith("waiting for the endpoint: 9 calls pending") and "unreachable" in \
        run.status_detail


def test_pause_resume_cancel(setup, eager_celery, django_capture_on_commit_callbacks):
    run = setup()
    LabelingRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    labeling_run_pause(run=run)
    item_ids = list(run.sample.members.values_list("item_id", flat=True))
    assert labeling_run_chunk_execute(run_id=run.pk, item_ids=item_ids).skipped
    with django_capture_on_commit_callbacks(execute=True):
        labeling_run_resume(run=run)
    run.refresh_from_db()
    assert run.status == RunStatus.FINISHED and run.judgements.count() == ITEMS * 3
    with pytest.raises(InvalidStateTransition):
        labeling_run_cancel(run=run)


def test_routing_rules() -> None:
    rules = RoutingRules(confidence_threshold=0.7, audit_share=0.0, audit_seed=1,
                         always_review_labels=frozenset({"threat"}))
    assert decide(1, [Vote("a", 0.9), Vote("a", 0.8)], rules).outcome == "auto_accepted"
    assert decide(1, [Vote("a", 0.9), Vote("b", 0.8)], rules).reason == "disagreement"
    assert decide(1, [Vote("a", 0.6), Vote("a", 0.7)], rules).reason == "low_confidence"
    assert decide(1, [Vote("threat", 0.99)], rules).reason == "always_review_label"
    assert decide(1, [Vote("a", 0.9), Vote(None, None, failed=True)], rules).outcome == "failed"
    audited = [i for i in range(2000)
               if decide(i, [Vote("a", 0.9)], RoutingRules(0.7, 0.1, 3)).reason == "audit"]
    assert 150 < len(audited) < 250  # a 10 % probability sample
    assert audited == [i for i in range(2000) if decide(i, [Vote("a", 0.9)], RoutingRules(0.7, 0.1, 3)).reason
                       == "audit"]


def test_output_validation_reasons() -> None:
    schema = {"type": "object", "required": ["label", "confidence", "rationale", "violated_rule_ids"],
              "properties": {"label": {"type": "string", "enum": ["a", "b"]},
                             "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                             "rationale": {"type": "string"}, "violated_rule_ids": {"type": "array"}}}
    good = json.dumps({"label": "a", "confidence": 0.5, "rationale": "r", "violated_rule_ids": []})
    assert parse_judgement(good, finish_reason="stop", refusal=None, schema=schema).label == "a"
    for content, finish, refusal, message in [
        (good.replace('"a"', '"c"'), "stop", None, "does not match the output schema at label"),
        (good[:20], "length", None, "truncated"), (None, "stop", "no", "refused"), ("{oops", "stop", None, "not JSON"),
    ]:
        with pytest.raises(InvalidLLMOutput, match=message):
            parse_judgement(content, finish_reason=finish, refusal=refusal, schema=schema)


def test_retry_failed_with_nothing_failed_finishes_again(setup, eager_celery, django_capture_on_commit_callbacks):
    run = setup()
    drive_until_finished(django_capture_on_commit_callbacks, run, lambda: labeling_run_start(run=run))
    assert not run.judgements.filter(status=JudgementStatus.FAILED).exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert labeling_run_retry_failed(run=run) == 0
    run.refresh_from_db()
    assert run.status == RunStatus.FINISHED


@pytest.mark.django_db(transaction=True)
def test_results_are_written_on_a_thread_while_calls_are_in_flight(setup) -> None:
    from runs.llm.executor import WorkResult
    from runs.services.work import _ResultWriter

    run = setup()
    voter = run.voters.first()
    item_ids = list(run.sample.members.values_list("item_id", flat=True))[:12]
    writer = _ResultWriter(run, batch_size=5, max_delay=0.05)
    assert writer._thread is not None
    for item_id in item_ids:
        writer.put(WorkResult(item_id, voter.pk, "ok", label="insult", confidence=0.9))
    deadline = time.monotonic() + 5
    while Judgement.objects.filter(run=run).count() < 12 and time.monotonic() < deadline:
        time.sleep(0.02)
    # All 12 are stored before close: two full batches and one flushed by its delay.
    assert Judgement.objects.filter(run=run).count() == 12
    assert writer.close() == 12

    with transaction.atomic():  # a caller's transaction keeps the writes: no thread
        assert _ResultWriter(run)._thread is None
