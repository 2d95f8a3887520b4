"""Runs on the Batch API against the simulator's files and batches endpoints (real openai
client): every pair judged once, results ingested once, discount priced, faults failed with
their reason, redelivered submits deduplicated, cancellation reaches the provider."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from content.models import ContentItem, Sample
from content.services.sampling import sample_create
from policies.compiler import ModelSettings
from policies.models import PromptTemplateVersion
from policies.services import prompt_version_compile
from runs.models import LabelingRun, LLMBatch, LLMCall, LLMEndpoint, RunStatus
from runs.services.batches import labeling_run_batch_poll, labeling_run_batch_submit
from runs.services.runs import (
    RunConfigurationError,
    VoterSpec,
    labeling_run_cancel,
    labeling_run_create,
    labeling_run_start,
)
from simulator.engine import SimulatorConfig, parse_models, text_sha256
from simulator.server import serve_in_thread
from tests.content.users import sampler

pytestmark = pytest.mark.django_db
ITEMS = 12


@pytest.fixture
def batch_run(published):
    texts = {f"batch message {i}": ("insult" if i % 3 == 0 else "not_harassment") for i in range(ITEMS)}
    servers = []

    def make(fault_rate: float = 0.0, supports_batch: bool = True, batch_seconds: float = 0.3):
        config = SimulatorConfig(models=parse_models(["sim-strong:0.95", "sim-weak:0.7"]), fault_rate=fault_rate,
                                 fault_kinds=("500", "malformed", "refusal"), batch_seconds=batch_seconds,
                                 answer_key={text_sha256(t): label for t, label in texts.items()})
        server, _ = serve_in_thread(config)
        servers.append(server)
        endpoint = LLMEndpoint.objects.create(
            name=f"batchsim-{len(servers)}", base_url=f"http://127.0.0.1:{server.server_address[1]}/v1",
            is_simulator=True, supports_batch=supports_batch, timeout_seconds=5,
            price_input_per_million=Decimal("2"), price_output_per_million=Decimal("8"))
        if not ContentItem.objects.exists():
            ContentItem.objects.bulk_create(ContentItem(source="b", external_id=str(i), parts={"text": t},
                                                        content_sha256=text_sha256(t)) for i, t in enumerate(texts))
            sample_create(name="all", method="uniform", size=ITEMS, seed=1, acting_user=sampler())
        template = PromptTemplateVersion.objects.get(template__key="json_classifier")
        prompt, _ = prompt_version_compile(policy_version=published, template_version=template,
                                           settings=ModelSettings(model="sim-strong", seed=3), acting_user=None)
        return labeling_run_create(name=f"batch-{len(servers)}", sample=Sample.objects.get(name="all"),
                                   prompt_version=prompt, executor="batch", chunk_size=100,
                                   voters=[VoterSpec(endpoint, "sim-strong"), VoterSpec(endpoint, "sim-weak")])

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


def poll_until_done(batch_ids: list[int], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(batch_ids)
    while waiting:
        assert time.monotonic() < deadline, "batches did not complete"
        waiting = [b for b in waiting if labeling_run_batch_poll(batch_id=b) is not None]
        time.sleep(0.1)


def test_a_batch_run_judges_every_pair_once_at_the_discount(batch_run, django_capture_on_commit_callbacks):
    run = batch_run()
    with django_capture_on_commit_callbacks(execute=False):  # the tasks are driven by hand below
        labeling_run_start(run=run)
    batch_ids = labeling_run_batch_submit(run_id=run.pk, item_ids=list(run.sample.members.values_list("item_id",
                                                                                                     flat=True)))
    assert len(batch_ids) == 1
    assert labeling_run_batch_submit(run_id=run.pk, item_ids=[m.item_id for m in run.sample.members.all()]) == []
    batch = LLMBatch.objects.get()
    assert batch.status == "submitted" and batch.remote_batch_id.startswith("batch_sim_")
    assert labeling_run_batch_poll(batch_id=batch.pk) is not None  # still validating
    poll_until_done(batch_ids)
    run.refresh_from_db()
    assert run.status == RunStatus.FINISHED
    assert run.judgements.count() == ITEMS * 2 and all(j.simulated for j in run.judgements.all())
    assert run.decisions.count() == ITEMS
    assert LLMCall.objects.filter(run=run).count() == ITEMS * 2  # ingested once
    assert labeling_run_batch_poll(batch_id=batch.pk) is None
    assert LLMCall.objects.filter(run=run).count() == ITEMS * 2
    call = LLMCall.objects.filter(run=run).first()
    full_price = (Decimal(call.input_tokens) * 2 + Decimal(call.output_tokens) * 8) / Decimal(1_000_000)
    assert call.cost == full_price / 2


def test_faulty_answers_fail_with_their_reason(batch_run, django_capture_on_commit_callbacks):
    run = batch_run(fault_rate=0.5)
    with django_capture_on_commit_callbacks(execute=False):
        labeling_run_start(run=run)
    poll_until_done(labeling_run_batch_submit(run_id=run.pk, item_ids=[m.item_id for m in run.sample.members.all()]))
    run.refresh_from_db()
    failed = run.judgements.filter(status="failed")
    assert run.judgements.count() == ITEMS * 2 and failed.exists() and run.status == RunStatus.FINISHED
    reasons = set(failed.values_list("error", flat=True))
    assert all(r.startswith(("batch request failed: HTTP 500", "invalid output")) for r in reasons), reasons


def test_cancelling_a_run_cancels_its_open_batch(batch_run, django_capture_on_commit_callbacks):
    run = batch_run(batch_seconds=30)
    with django_capture_on_commit_callbacks(execute=False):
        labeling_run_start(run=run)
    (batch_id,) = labeling_run_batch_submit(run_id=run.pk, item_ids=[m.item_id for m in run.sample.members.all()])
    labeling_run_cancel(run=run)
    assert labeling_run_batch_poll(batch_id=batch_id) is None
    assert LLMBatch.objects.get().status == "cancelled" and not run.judgements.exists()


def test_the_batch_executor_needs_batch_endpoints(batch_run):
    with pytest.raises(RunConfigurationError, match="do not offer it"):
        batch_run(supports_batch=False)
    assert not LabelingRun.objects.exists()
