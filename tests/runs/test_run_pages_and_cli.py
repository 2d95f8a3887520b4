"""The run page, its JSON progress, retry-failed from the page, and the run/endpoint CLIs."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from content.models import ContentItem
from content.services.sampling import sample_create
from policies.compiler import ModelSettings
from policies.models import PromptTemplateVersion
from policies.services import prompt_version_compile
from runs.models import Judgement, LabelingRun, LLMEndpoint, RunStatus
from simulator.engine import SimulatorConfig
from simulator.server import serve_in_thread
from tests.content.users import sampler

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cli_user")]


@pytest.fixture
def sim_server():
    server, _ = serve_in_thread(SimulatorConfig())
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


@pytest.fixture
def prompt(published):
    tv = PromptTemplateVersion.objects.get(template__key="category_blocks")
    return prompt_version_compile(policy_version=published, template_version=tv,
                                  settings=ModelSettings(model="sim-strong"), acting_user=None)[0]


@pytest.fixture
def sample(db):
    ContentItem.objects.bulk_create(ContentItem(source="t", external_id=str(i), parts={"text": f"you idiot {i}"
                                                if i % 2 else f"hello {i}"}, content_sha256=f"{i:064d}")
                                    for i in range(12))
    return sample_create(name="s", method="uniform", size=12, seed=1, acting_user=sampler())


def cli(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_cli_creates_starts_and_reports_a_run(sample, prompt, sim_server, eager_celery,
                                              django_capture_on_commit_callbacks) -> None:
    assert "added endpoint sim (SIMULATOR)" in cli("endpoint", "add", "sim", "--base-url", sim_server, "--simulator",
                                                    "--price-input", "0.5", "--price-output", "2")
    created = cli("run", "create", "r1", "--sample", "s", "--prompt", prompt.sha256[:10], "--voter", "sim:sim-strong",
                  "--voter", "sim:sim-weak:0.2:9", "--chunk-size", "5")
    assert "12 items × 2 voters" in created
    with django_capture_on_commit_callbacks(execute=True):
        cli("run", "start", "r1")
    status = cli("run", "status", "r1")
    assert "[SIMULATED VOTERS]: finished" in status and "judgements 24/24 (100.0 %)" in status
    assert "decisions:" in status and "routing:" in status
    assert Judgement.objects.count() == 24
    with pytest.raises(CommandError, match="no endpoint named 'nope'"):
        cli("run", "create", "r2", "--sample", "s", "--prompt", prompt.sha256[:10], "--voter", "nope:sim-strong")
    with pytest.raises(CommandError, match="no labeling run 'missing'"):
        cli("run", "status", "missing")
    with pytest.raises(CommandError, match="run 'r1' is finished; cannot paused"):
        cli("run", "pause", "r1")


def test_run_page_progress_json_and_retry_failed(sample, prompt, sim_server, admin_client,
                                                 django_assert_max_num_queries) -> None:
    from runs.services.runs import VoterSpec, labeling_run_create

    endpoint = LLMEndpoint.objects.create(name="sim", base_url=sim_server, is_simulator=True)
    run = labeling_run_create(name="page", sample=sample, prompt_version=prompt,
                              voters=[VoterSpec(endpoint, "sim-strong")])
    voter = run.voters.get()
    items = list(sample.members.values_list("item_id", flat=True))
    Judgement.objects.bulk_create([Judgement(run=run, item_id=i, voter=voter, status="failed",
                                             error="invalid output: not JSON", raw_response="{oops", attempts=4)
                                   for i in items[:3]])
    LabelingRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    with django_assert_max_num_queries(20):
        page = admin_client.get(reverse("run-detail", args=[run.pk]))
    html = page.content.decode()
    assert page.status_code == 200 and "SIMULATED VOTERS" in html and "invalid output: not JSON" in html
    progress = admin_client.get(reverse("run-progress", args=[run.pk])).json()
    assert (progress["done"], progress["failed"], progress["pending"], progress["expected"]) == (3, 3, 9, 12)
    response = admin_client.post(reverse("run-retry-failed", args=[run.pk]), follow=True)
    assert "Retrying 3 items." in response.content.decode()
    assert not Judgement.objects.filter(run=run).exists()


def test_run_page_needs_staff(client, sample) -> None:
    assert client.get(reverse("run-detail", args=[1])).status_code == 302


def test_labeling_ops_can_see_and_drive_runs(db, django_user_model) -> None:
    from django.contrib.auth.models import Group

    ops = django_user_model.objects.create_user("ops", is_staff=True)
    ops.groups.add(Group.objects.get(name="labeling ops"))
    for perm in ("runs.view_labelingrun", "runs.change_labelingrun", "content.add_sample",
                 "content.view_contentitem"):
        assert ops.has_perm(perm), perm
    assert not ops.has_perm("policies.publish_policyversion")


def test_a_retired_policy_prompt_needs_allow_retired(sample, prompt, published, author, approver, sim_server) -> None:
    from policies.services import (
        policy_version_create_draft,
        policy_version_publish,
        policy_version_submit,
    )

    cli("endpoint", "add", "sim", "--base-url", sim_server, "--simulator")
    newer = policy_version_create_draft(from_version=published, acting_user=author)
    policy_version_submit(version=newer, acting_user=author)
    policy_version_publish(version=newer, acting_user=approver)  # retires the prompt's version
    args = ("run", "create", "old", "--sample", "s", "--prompt", prompt.sha256[:10], "--voter", "sim:sim-strong")
    with pytest.raises(CommandError, match=r"harassment@1, which is retired, not published.*--allow-retired"):
        cli(*args)
    assert not LabelingRun.objects.exists()
    err = StringIO()
    call_command(*args, "--allow-retired", stdout=StringIO(), stderr=err)
    assert "warning: harassment@1 is retired" in err.getvalue()
    assert LabelingRun.objects.get().name == "old"
