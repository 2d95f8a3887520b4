"""``manage.py run … --json``: create prints the run and its estimate; start/status/pause/resume/
cancel/retry-failed print the run's state afterwards (with --wait, the final state)."""

from __future__ import annotations

import json
from datetime import datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from runs.models import Judgement, LabelingRun, RunStatus
from tests.runs.test_run_pages_and_cli import prompt, sample, sim_server  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cli_user")]


def run_json(*args: str) -> dict:
    out = StringIO()
    call_command("run", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_run_subcommands_print_json(sample, prompt, sim_server, eager_celery,  # noqa: F811
                                    django_capture_on_commit_callbacks) -> None:
    call_command("endpoint", "add", "sim", "--base-url", sim_server, "--simulator", stdout=StringIO())
    created = run_json("create", "r1", "--sample", "s", "--prompt", prompt.sha256[:10], "--voter", "sim:sim-strong",
                       "--voter", "sim:sim-weak:0.2:9", "--chunk-size", "5")
    run = LabelingRun.objects.get(name="r1")
    assert (created["run"], created["name"], created["status"], created["items"]) == (run.pk, "r1", "draft", 12)
    assert [(v["model"], v["temperature"], v["seed"]) for v in created["voters"]] == [
        ("sim-strong", 0.0, None), ("sim-weak", 0.2, 9)]
    assert created["prompt_version"] == prompt.sha256 and created["estimated_input_tokens"] > 0
    assert datetime.fromisoformat(created["created_at"]) and created["started_at"] is None

    with django_capture_on_commit_callbacks(execute=True):
        started = run_json("start", "r1")
    assert started["run"] == run.pk and "progress" in started
    status = run_json("status", "r1", "--wait")
    progress = status["progress"]
    assert status["status"] == "finished" and datetime.fromisoformat(status["finished_at"])
    assert (progress["done"], progress["expected"], progress["pending"], progress["simulated"]) == (24, 24, 0, True)
    assert sum(progress["outcomes"].values()) == 12 and status["failures"] == []
    assert Judgement.objects.filter(run=run).count() == 24

    voter = run.voters.order_by("position").first()
    Judgement.objects.filter(run=run, voter=voter, item_id__in=list(
        run.sample.members.values_list("item_id", flat=True)[:2])).update(status="failed", error="invalid output")
    LabelingRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    failing = run_json("status", "r1")
    assert failing["progress"]["failed"] == 2 and [f["error"] for f in failing["failures"]] == ["invalid output"] * 2
    retried = run_json("retry-failed", "r1")
    assert retried["retrying"] == 2 and retried["progress"]["failed"] == 0 and retried["progress"]["pending"] == 2

    # A second run whose chunks never execute here (on-commit callbacks not run): pause, resume, cancel.
    run_json("create", "r2", "--sample", "s", "--prompt", prompt.sha256[:10], "--voter", "sim:sim-strong")
    assert run_json("start", "r2")["status"] == LabelingRun.objects.get(name="r2").status
    assert run_json("pause", "r2")["status"] == "paused"
    resumed = run_json("resume", "r2")
    assert resumed["status"] == LabelingRun.objects.get(name="r2").status != "paused"
    assert run_json("cancel", "r2")["status"] == "cancelled"


def test_errors_stay_command_errors(sample, prompt) -> None:  # noqa: F811
    with pytest.raises(CommandError, match="no labeling run 'missing'"):
        run_json("status", "missing")
    with pytest.raises(CommandError, match="no endpoint named 'nope'"):
        run_json("create", "r2", "--sample", "s", "--prompt", prompt.sha256[:10], "--voter", "nope:sim-strong")
