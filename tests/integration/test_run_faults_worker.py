"""20 % injected faults of every kind, a real worker on real Redis: every pair ends labelled
or failed with its reason, the run reaches a terminal state, and retrying the failed works."""

from __future__ import annotations

import time

import pytest

from content.models import ContentItem
from content.services.sampling import sample_create
from policies.compiler import ModelSettings
from policies.models import PromptTemplateVersion
from policies.services import prompt_version_compile
from runs.models import JudgementStatus, LabelingRun, LLMEndpoint, RunStatus
from runs.services.runs import VoterSpec, labeling_run_create, labeling_run_retry_failed, labeling_run_start
from simulator.engine import FAULT_KINDS, SimulatorConfig
from simulator.server import serve_in_thread
from tests.content.users import sampler

pytestmark = pytest.mark.integration
ITEMS = 40


def wait_terminal(run: LabelingRun, timeout: float = 180) -> LabelingRun:
    deadline = time.monotonic() + timeout
    while LabelingRun.objects.get(pk=run.pk).status == RunStatus.RUNNING:
        assert time.monotonic() < deadline, "the run did not reach a terminal state"
        time.sleep(0.5)
    return LabelingRun.objects.get(pk=run.pk)


def test_every_fault_kind_ends_labelled_or_failed_and_retry_works(celery_worker_process, published):
    server, _ = serve_in_thread(SimulatorConfig(fault_rate=0.2, fault_kinds=FAULT_KINDS, timeout_seconds=1.0,
                                                retry_after_seconds=0.1))
    try:
        endpoint = LLMEndpoint.objects.create(
            name="faulty", base_url=f"http://127.0.0.1:{server.server_address[1]}/v1", is_simulator=True,
            max_concurrency=8, timeout_seconds=0.5)
        ContentItem.objects.bulk_create(ContentItem(source="t", external_id=str(i), parts={"text": f"msg {i}"},
                                                    content_sha256=f"{i:064d}") for i in range(ITEMS))
        sample = sample_create(name="s", method="uniform", size=ITEMS, seed=1, acting_user=sampler())
        template = PromptTemplateVersion.objects.get(template__key="json_classifier")
        prompt, _ = prompt_version_compile(policy_version=published, template_version=template,
                                           settings=ModelSettings(model="sim-strong"), acting_user=None)
        run = labeling_run_create(name="faults", sample=sample, prompt_version=prompt, chunk_size=10, max_attempts=1,
                                  voters=[VoterSpec(endpoint, "sim-strong"), VoterSpec(endpoint, "sim-weak")])
        labeling_run_start(run=run)
        run = wait_terminal(run)
        assert run.status == RunStatus.FINISHED, run.status_detail
        judgements = list(run.judgements.all())
        assert len(judgements) == ITEMS * 2 and len({(j.item_id, j.voter_id) for j in judgements}) == ITEMS * 2
        for judgement in judgements:
            assert (judgement.status == JudgementStatus.OK and judgement.label) or judgement.error
        assert run.decisions.count() == ITEMS
        outcomes = set(run.calls.values_list("outcome", flat=True))
        assert {"ok", "rate_limited", "http_500", "timeout"} <= outcomes, outcomes
        failed = run.judgements.filter(status=JudgementStatus.FAILED).count()
        assert failed > 0  # one attempt each: invalid answers fail at once, transient ones wait and retry
        assert labeling_run_retry_failed(run=run) > 0
        run = wait_terminal(run)
        assert run.status == RunStatus.FINISHED and run.judgements.count() == ITEMS * 2
        assert run.judgements.filter(status=JudgementStatus.FAILED).count() < failed
    finally:
        server.shutdown()
        server.server_close()
