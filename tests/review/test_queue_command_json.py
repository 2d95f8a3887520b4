"""``manage.py queue … --json`` against a real Label Studio: create, push, sync, status (one queue
and every queue), labelers, pause, resume and recreate each print one JSON document."""

from __future__ import annotations

import json
from datetime import datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from content.models import ContentItem
from content.services.sampling import sample_create
from policies.compiler import ModelSettings
from policies.models import PromptTemplateVersion
from policies.services import prompt_version_compile
from review.lsconfig import annotation_result
from review.models import Labeler, ReviewQueue, ReviewTask
from runs.models import ItemDecision, LLMEndpoint
from runs.services.runs import VoterSpec, labeling_run_create
from tests.content.users import sampler

pytestmark = [pytest.mark.integration, pytest.mark.django_db, pytest.mark.usefixtures("cli_user")]


def queue_json(*args: str) -> dict:
    out = StringIO()
    call_command("queue", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


@pytest.fixture
def routed(published):
    """Three items an LLM run sent to human review under the published policy version."""
    items = ContentItem.objects.bulk_create([
        ContentItem(source="qj", external_id=str(i), parts={"text": f"queue json {i}"},
                    content_sha256=f"qj{i}".encode().hex().ljust(64, "0")[:64]) for i in range(3)])
    endpoint = LLMEndpoint.objects.create(name="sim", base_url="http://127.0.0.1:9/v1", is_simulator=True)
    prompt, _ = prompt_version_compile(
        policy_version=published, template_version=PromptTemplateVersion.objects.get(template__key="json_classifier"),
        settings=ModelSettings(model="sim-strong"), acting_user=None)
    run = labeling_run_create(name="routing", prompt_version=prompt, voters=[VoterSpec(endpoint, "sim-strong")],
                              sample=sample_create(name="qj", method="uniform", size=3, seed=1, acting_user=sampler()))
    for item in items:
        ItemDecision.objects.create(run=run, item=item, outcome="human_review", reason="low_confidence",
                                    label="insult", confidence=0.55)
    return items


def test_queue_subcommands_print_json(ls, published, routed) -> None:
    created = queue_json("create", "json-q", "--policy", "harassment", "--vendor", "Acme BPO", "--overlap", "1")
    queue = ReviewQueue.objects.get(name="json-q")
    assert (created["queue"], created["vendor"], created["policy_version"], created["overlap"]) == (
        "json-q", "Acme BPO", str(published), 1)
    assert created["ls_project_id"] == queue.ls_project_id and datetime.fromisoformat(created["created_at"])

    pushed = queue_json("push", "json-q")
    assert (pushed["queue"], pushed["added"], pushed["pushed"], pushed["recovered"], pushed["gold"]) == (
        "json-q", 3, 3, 0, 0)

    user = ls.user_create(email="json-labeler@acme.test", name="Json Labeler")
    task = ReviewTask.objects.filter(queue=queue).order_by("pk").first()
    ls.annotation_create(task.ls_task_id, annotation_result("insult"), completed_by=user)
    synced = queue_json("sync", "json-q")
    assert (synced["created"], synced["completed"], synced["invalid"]) == (1, 1, 0)
    assert datetime.fromisoformat(synced["last_synced_at"]) and synced["flagged"] == []

    status = queue_json("status", "json-q")
    assert status["queue"] == "json-q" and status["counts"]["complete"] == 1 and status["counts"]["pending"] == 2
    assert [q["queue"] for q in queue_json("status")["queues"]] == ["json-q"]

    labeler = Labeler.objects.get(ls_user_id=user)
    quality = queue_json("labelers", "json-q")
    [row] = quality["labelers"]
    assert row["labeler"]["id"] == labeler.pk and row["labels"] == 1 and row["accuracy"] is None
    assert quality["vendors"][0]["vendor"] == "Acme BPO" and quality["bar"]["min_gold_items"] >= 1

    ref = f"Acme BPO/{labeler.external_id}"
    paused = queue_json("pause", ref, "--reason", "json test")
    assert (paused["id"], paused["status"], paused["reason"]) == (labeler.pk, "paused", "json test")
    assert datetime.fromisoformat(paused["paused_at"]) and paused["tasks_reserved"] == 0
    assert queue_json("resume", ref)["status"] == "active"

    ls.project_delete(queue.ls_project_id)
    recreated = queue_json("recreate", "json-q")
    assert recreated["ls_project_id"] == ReviewQueue.objects.get(pk=queue.pk).ls_project_id != queue.ls_project_id


def test_errors_stay_command_errors(db) -> None:
    with pytest.raises(CommandError, match="no queue named 'nope'"):
        queue_json("status", "nope")
