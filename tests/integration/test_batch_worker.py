"""A Batch API run driven by a real Celery worker on real Redis: submit, polls rescheduled
with countdowns, results ingested once, the run finishes."""

from __future__ import annotations

import time

import pytest

from content.models import ContentItem
from content.services.sampling import sample_create
from policies.compiler import ModelSettings
from policies.models import PromptTemplateVersion
from policies.services import prompt_version_compile
from runs.models import LabelingRun, LLMBatch, LLMCall, LLMEndpoint, RunStatus
from runs.services.runs import VoterSpec, labeling_run_create, labeling_run_start
from simulator.engine import SimulatorConfig
from simulator.server import serve_in_thread
from tests.content.users import sampler

pytestmark = pytest.mark.integration
ITEMS = 30


def test_batch_run_finishes_on_a_real_worker(celery_worker_process, published):
    server, _ = serve_in_thread(SimulatorConfig(batch_seconds=1.0))
    try:
        endpoint = LLMEndpoint.objects.create(
            name="batch-sim", base_url=f"http://127.0.0.1:{server.server_address[1]}/v1", is_simulator=True,
            supports_batch=True, timeout_seconds=10)
        ContentItem.objects.bulk_create(ContentItem(source="t", external_id=str(i), parts={"text": f"note {i}"},
                                                    content_sha256=f"{i:064d}") for i in range(ITEMS))
        sample = sample_create(name="s", method="uniform", size=ITEMS, seed=1, acting_user=sampler())
        template = PromptTemplateVersion.objects.get(template__key="json_classifier")
        prompt, _ = prompt_version_compile(policy_version=published, template_version=template,
                                           settings=ModelSettings(model="sim-strong"), acting_user=None)
        run = labeling_run_create(name="batch", sample=sample, prompt_version=prompt, executor="batch", chunk_size=10,
                                  voters=[VoterSpec(endpoint, "sim-strong"), VoterSpec(endpoint, "sim-weak")])
        labeling_run_start(run=run)
        deadline = time.monotonic() + 120
        while LabelingRun.objects.get(pk=run.pk).status == RunStatus.RUNNING:
            assert time.monotonic() < deadline, "the batch run did not finish"
            time.sleep(0.5)
        run.refresh_from_db()
        assert run.status == RunStatus.FINISHED, run.status_detail
        assert LLMBatch.objects.filter(run=run, status="ingested").count() == 3  # three chunks of ten items
        pairs = list(run.judgements.values_list("item_id", "voter_id"))
        assert len(pairs) == len(set(pairs)) == ITEMS * 2
        assert LLMCall.objects.filter(run=run).count() == ITEMS * 2
    finally:
        server.shutdown()
        server.server_close()
