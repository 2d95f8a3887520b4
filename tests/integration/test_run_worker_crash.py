"""kill -9 of a worker in the middle of a run, then a new worker: the run finishes with exactly
one judgement per (item, voter) — nothing lost, nothing duplicated. Real Redis, real workers."""

from __future__ import annotations

import os
import signal
import time

import pytest

from content.models import ContentItem
from content.services.sampling import sample_create
from demo import devstack
from policies.compiler import ModelSettings
from policies.models import PromptTemplateVersion
from policies.services import prompt_version_compile
from runs.models import Judgement, LabelingRun, LLMEndpoint, RunStatus
from runs.services.runs import VoterSpec, labeling_run_create, labeling_run_start, labeling_run_watchdog
from simulator.engine import SimulatorConfig
from simulator.server import serve_in_thread
from tests.content.users import sampler

pytestmark = pytest.mark.integration
ITEMS, VOTERS = 60, 2


def wait_for(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_killed_worker_loses_and_duplicates_nothing(celery_worker_process, redis_url, published, tmp_path):
    server, _ = serve_in_thread(SimulatorConfig(latency_ms=150))
    try:
        endpoint = LLMEndpoint.objects.create(name="sim", base_url=f"http://127.0.0.1:{server.server_address[1]}/v1",
                                              is_simulator=True, max_concurrency=4, timeout_seconds=10)
        ContentItem.objects.bulk_create(ContentItem(source="t", external_id=str(i), parts={"text": f"message {i}"},
                                                    content_sha256=f"{i:064d}") for i in range(ITEMS))
        sample = sample_create(name="s", method="uniform", size=ITEMS, seed=1, acting_user=sampler())
        tv = PromptTemplateVersion.objects.get(template__key="json_classifier")
        prompt, _ = prompt_version_compile(policy_version=published, template_version=tv,
                                           settings=ModelSettings(model="sim-strong"), acting_user=None)
        run = labeling_run_create(name="crash", sample=sample, prompt_version=prompt, chunk_size=10,
                                  voters=[VoterSpec(endpoint, "sim-strong"), VoterSpec(endpoint, "sim-weak")])
        labeling_run_start(run=run)

        wait_for(lambda: Judgement.objects.filter(run=run).count() >= 20, 90, "first judgements")
        os.killpg(celery_worker_process.pid, signal.SIGKILL)  # the worker and its pool child, no goodbye
        celery_worker_process.popen.wait(timeout=10)
        before = Judgement.objects.filter(run=run).count()
        assert before < ITEMS * VOTERS

        from conftest import child_env

        replacement = devstack.start_celery_worker(
            env=child_env(CELERY_BROKER_URL=redis_url, CELERY_RESULT_BACKEND=redis_url),
            log_path=tmp_path / "worker2.log", queues=["default", "llm", "sync", "freeze"], hostname="second")
        try:
            # The killed worker's unacknowledged chunk waits for the broker's visibility timeout;
            # the watchdog (Celery beat, every two minutes in production) re-queues it now.
            assert labeling_run_watchdog(stale_after_seconds=0) == ["crash"]
            wait_for(lambda: LabelingRun.objects.get(pk=run.pk).status == RunStatus.FINISHED, 120, "run to finish")
        finally:
            replacement.stop()
        pairs = list(Judgement.objects.filter(run=run).values_list("item_id", "voter_id"))
        assert len(pairs) == len(set(pairs)) == ITEMS * VOTERS
        assert run.decisions.count() == ITEMS
    finally:
        server.shutdown()
        server.server_close()
