"""The monitor file's schema errors (file:line: field: reason), and the CLI with --json and --user."""

from __future__ import annotations

import datetime
import json

import pytest
from django.core.management import CommandError, call_command

from monitoring.models import Cycle, Monitor
from monitoring.schema import cycle_seed, parse_monitor, partition_dates
from tests.monitoring.conftest import MONITOR_YAML
from touchstone.lines import LineError

GOOD = MONITOR_YAML.format(name="m1", folder="/data", deadline=48, max_attempts=2)


def error_of(text: str) -> LineError:
    with pytest.raises(LineError) as caught:
        parse_monitor(text, path="m.yaml")
    return caught.value


def test_a_good_file_gets_its_defaults():
    spec = parse_monitor(GOOD, path="m.yaml")
    assert spec["sample"] == {"design": "uniform", "id_column": "id", "floor": 0.01, "size": 30, "seed": 7}
    assert spec["estimates"]["alpha"] == 0.05 and spec["alerts"][1]["window"] == 3


@pytest.mark.parametrize(("edit", "line", "field", "reason"), [
    (("sample: {size: 30, seed: 7}", "sample: {size: -3, seed: 7}"), 6, "sample.size", "less than the minimum"),
    (("cadence: daily", "cadence: hourly"), 17, "cadence", "'hourly' is not one of daily, weekly"),
    (("cadence: daily", "cadence: daily\ncolour: red"), 18, "colour", "unknown field"),
    (("  glob: /data/chats-{date}.csv", "  glob: /data/chats.csv"), 4, "frame.glob", "{date} placeholder"),
    (("threshold: 0.25}", "threshold: 2.5}"), 21, "alerts[0].threshold", "greater than the maximum"),
    (("kind: agreement_below, threshold: 0.999}", "kind: agreement_below}"), 23, "alerts[2]",
     "missing field 'threshold'"),
    (("name: rising", "name: too-high"), 22, "alerts[1].name", "names another rule already"),
    (("  prompt: {template: json_classifier, model: sim-strong, seed: 1}\n", ""), 7, "labeling",
     "give exactly one of 'prompt_version' or 'prompt'"),
    (("start: 2026-11-01", "start: 2026-13-01"), 18, "start", "is not a date"),
])
def test_schema_errors_name_file_line_and_field(edit, line, field, reason):
    assert edit[0] in GOOD
    error = error_of(GOOD.replace(edit[0], edit[1]))
    assert (error.path, error.line, error.field) == ("m.yaml", line, field), str(error)
    assert reason in error.reason, str(error)
    assert str(error).startswith(f"m.yaml:{line}: {field}: ")


def test_not_yaml_and_not_a_mapping():
    assert error_of("name: [unclosed\n").reason.startswith("not valid YAML")
    assert error_of("- a list\n").reason == "expected a YAML mapping of monitor fields"


def test_seeds_and_partitions_are_deterministic():
    day = datetime.date(2026, 11, 3)
    assert cycle_seed(7, day) == cycle_seed(7, day) != cycle_seed(7, day + datetime.timedelta(days=1))
    assert cycle_seed(7, day) != cycle_seed(8, day) and 0 <= cycle_seed(7, day) < 2 ** 56
    start = datetime.date(2026, 11, 1)
    assert partition_dates(start, datetime.date(2026, 10, 1), datetime.date(2026, 11, 3), "daily") == [
        start, datetime.date(2026, 11, 2), day]
    assert partition_dates(start, datetime.date(2026, 11, 2), datetime.date(2026, 11, 22), "weekly") == [
        datetime.date(2026, 11, 8), datetime.date(2026, 11, 15), datetime.date(2026, 11, 22)]


@pytest.mark.django_db
def test_cli_create_list_show_pause_resume(world, ops, pipeline_user, tmp_path):
    make, _ = world
    path = tmp_path / "m.yaml"
    path.write_text(MONITOR_YAML.format(name="cli-mon", folder=make.folder, deadline=48, max_attempts=2))
    out = call(["create", "--file", str(path), "--json", "--user", ops.username])
    assert out["name"] == "cli-mon" and out["review_queue"] == "acme-harassment" and out["cadence"] == "daily"
    with pytest.raises(CommandError, match=r"m.yaml:1: name: a monitor named 'cli-mon' exists already"):
        call(["create", "--file", str(path), "--user", ops.username])
    bad = tmp_path / "bad.yaml"
    bad.write_text(path.read_text().replace("endpoint: sim, model: sim-medium", "endpoint: nope, model: x")
                   .replace("name: cli-mon", "name: other"))
    with pytest.raises(CommandError, match=r"bad.yaml:11: labeling.voters\[1\].endpoint: no LLM endpoint 'nope'"):
        call(["create", "--file", str(bad), "--user", ops.username])
    bad.write_text(path.read_text().replace("queue: acme-harassment", "queue: nowhere").replace("cli-mon", "x"))
    with pytest.raises(CommandError, match=r"bad.yaml:15: audit.queue: no review queue 'nowhere'"):
        call(["create", "--file", str(bad), "--user", ops.username])
    with pytest.raises(CommandError, match="may not create monitors"):
        call(["create", "--file", str(path), "--user", pipeline_user.username])
    assert [m["name"] for m in call(["list", "--json", "--user", pipeline_user.username])["monitors"]] == ["cli-mon"]
    assert call(["pause", "cli-mon", "--json", "--user", ops.username])["paused"] is True
    with pytest.raises(CommandError, match="may not pause or resume monitors"):
        call(["resume", "cli-mon", "--user", pipeline_user.username])
    assert call(["resume", "cli-mon", "--json", "--user", ops.username])["paused"] is False
    shown = call(["show", "cli-mon", "--json", "--user", pipeline_user.username])
    assert shown["cycles"] == [] and shown["alert_rules"][0]["name"] == "too-high"
    with pytest.raises(CommandError, match="no monitor named 'nope'"):
        call(["show", "nope", "--user", ops.username])
    assert Monitor.objects.count() == 1


@pytest.mark.django_db
def test_cli_backfill_runs_past_partitions_once(world, ops, django_capture_on_commit_callbacks):
    make, people = world
    people.instant = True
    make("bf")
    args = ["backfill", "bf", "--from", "2026-11-01", "--to", "2026-11-03", "--sync", "--json", "--user", ops.username]
    with django_capture_on_commit_callbacks(execute=True):
        first = call(args)  # the runs' chunks run when the command's work commits
    assert first["created"] == 3 and [c["partition"] for c in first["cycles"]] == [
        "2026-11-01", "2026-11-02", "2026-11-03"]
    with django_capture_on_commit_callbacks(execute=True):
        again = call(args)  # idempotent: the same cycles, advanced further
    assert again["created"] == 0 and again["existing"] == 3
    assert {c["state"] for c in again["cycles"]} == {"done"}, again["cycles"]
    assert Cycle.objects.filter(monitor__name="bf").count() == 3
    assert all(c["cost"] != "0.000000" for c in again["cycles"])
    with pytest.raises(CommandError, match="only past partitions can be backfilled"):
        call(["backfill", "bf", "--from", "2026-11-01", "--to", "2999-01-01", "--user", ops.username])
    with django_capture_on_commit_callbacks(execute=True):
        now = call(["run-now", "bf", "--date", "2026-11-04", "--sync", "--json", "--user", ops.username])
    assert now["created"] is True and now["cycle"]["partition"] == "2026-11-04" and now["cycle"]["sample"]
    with django_capture_on_commit_callbacks(execute=True):
        again = call(["run-now", "bf", "--date", "2026-11-04", "--sync", "--json", "--user", ops.username])
    assert again["created"] is False and again["cycle"]["id"] == now["cycle"]["id"]
    text = call_text(["show", "bf", "--user", ops.username])
    assert "2026-11-03" in text and ": done" in text


def call(args: list[str]) -> dict:
    return json.loads(call_text(args))


def call_text(args: list[str]) -> str:
    from io import StringIO

    out = StringIO()
    call_command("monitor", *args, stdout=out)
    return out.getvalue()
