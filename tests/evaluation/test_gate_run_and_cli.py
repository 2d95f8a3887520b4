"""The candidate's evidence end to end: ``run create --golden-set`` labels exactly a golden set's
items with a candidate prompt (a real run on the simulator), the finished run becomes a signal
version, ``evaluate`` measures it, and ``gate check``/``gate show`` print the verdict."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from content.models import ContentItem, Sample
from evaluation.models import SignalVersion
from goldsets.item_sets import goldset_version_sample
from goldsets.models import GoldenItem, GoldenSetVersion
from runs.item_sets import item_set_sample
from runs.models import Judgement, LabelingRun, RunStatus
from simulator.engine import SimulatorConfig
from simulator.server import serve_in_thread
from tests.evaluation.evaluations.conftest import frozen_goldset
from tests.evaluation.gate_fixtures import *  # noqa: F403
from tests.evaluation.gate_fixtures import evaluate, set_gate
from touchstone.errors import InvalidStateTransition, PermissionDenied

pytestmark = pytest.mark.django_db

TEXTS = ["you idiot", "hello there", "I will find you and hurt you", "nice weather", "you are useless trash",
         "thanks for the help", "shut up loser", "see you tomorrow"]
GOLD = ["insult", "not_harassment", "threat", "not_harassment", "insult", "not_harassment", "insult",
        "not_harassment"]


@pytest.fixture
def small_goldset(published):
    """Eight gold items whose text the simulator reads; one more item outside the golden set."""
    rows = [(f"x{i}", g, {}, [{"vendor": "v", "role": "labeler", "label": g}], None) for i, g in enumerate(GOLD)]
    version = frozen_goldset(published, rows, name="small", source="s")
    for i, text in enumerate(TEXTS):
        ContentItem.objects.filter(source="s", external_id=f"x{i}").update(parts={"text": text})
    ContentItem.objects.create(source="s", external_id="outside", parts={"text": "not gold"}, target_part="text",
                               content_sha256="f" * 64)
    return version


def cli(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_census_sample_holds_exactly_the_golden_items(small_goldset, ops, pipeline):
    sample = item_set_sample(kind="golden_set", ref="small", acting_user=ops)
    gold_items = set(GoldenItem.objects.filter(version=small_goldset).values_list("item_id", flat=True))
    members = list(sample.members.values_list("item_id", "inclusion_probability"))
    assert sample.name == "golden:small@1" and sample.size == sample.frame_size == len(gold_items) == 8
    assert {m for m, _ in members} == gold_items and {p for _, p in members} == {1.0}
    assert sample.parameters["census"] is True and sample.parameters["digest"] == small_goldset.digest
    assert item_set_sample(kind="golden_set", ref="small@1", acting_user=ops) == sample  # made once
    assert Sample.objects.count() == 1
    with pytest.raises(PermissionDenied):
        goldset_version_sample(version=small_goldset, acting_user=pipeline)


def test_a_version_that_is_not_frozen_has_no_sample(small_goldset, ops):
    draft = GoldenSetVersion.objects.create(golden_set=small_goldset.golden_set,
                                            policy_version=small_goldset.policy_version)
    with pytest.raises(InvalidStateTransition, match="only a frozen version's items can be labeled"):
        goldset_version_sample(version=draft, acting_user=ops)


@pytest.fixture
def sim_server():
    server, _ = serve_in_thread(SimulatorConfig())
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


@pytest.mark.usefixtures("cli_user")
def test_run_create_golden_set_labels_it_and_the_gate_reads_the_evaluation(
        small_goldset, candidate, prompts, sim_server, eager_celery, django_capture_on_commit_callbacks, author,
        approver, cli_user):
    cli("endpoint", "add", "sim", "--base-url", sim_server, "--simulator", "--price-input", "0.5",
        "--price-output", "2")
    out, err = cli("run", "create", "cand", "--golden-set", "small", "--prompt", prompts[1].sha256[:12],
                   "--voter", "sim:sim-strong", "--audit-share", "0")
    assert "created run 'cand'" in out and "8 items × 1 voters; estimate" in out and "cost" in out
    assert "harassment@2 is in_review, not published (a candidate on a golden set)" in err
    run = LabelingRun.objects.get(name="cand")
    assert run.status == RunStatus.DRAFT and run.sample.name == "golden:small@1"  # nothing spent before start
    assert set(run.sample.members.values_list("item_id", flat=True)) == set(
        GoldenItem.objects.filter(version=small_goldset).values_list("item_id", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        cli("run", "start", "cand")
    run.refresh_from_db()
    assert run.status == RunStatus.FINISHED and Judgement.objects.filter(run=run).count() == 8
    version = SignalVersion.objects.get(labeling_run=run)  # made by the receiver when the run finished
    assert version.prompt_version == prompts[1] and version.scores.count() > 0

    out, _ = cli("gate", "show", "harassment")
    assert "no publish gate" in out
    set_gate(candidate.policy, author, golden_set="small", at_least=0.0)
    with pytest.raises(SystemExit):
        cli("gate", "check", "harassment", "--user", approver.username)  # no evaluation yet: FAIL, exit 1
    cli("evaluate", f"{version}", "--golden-set", "small", "--resamples", "50")
    out, _ = cli("gate", "check", "harassment", "--user", approver.username)
    assert out.startswith("publish gate of harassment on harassment@2: PASS")
    assert "candidate:  " in out and f"({version}, /evaluations/" in out and "verdict:    PASS" in out
    data = json.loads(cli("gate", "check", "harassment@2", "--json", "--user", approver.username)[0])
    assert data["passed"] is True and data["candidate_signal_version"] == str(version)
    shown = json.loads(cli("gate", "show", "harassment", "--json")[0])
    assert shown["publish_gate"] == {"golden_set": "small", "metric": "f1", "label": "violating", "at_least": 0.0}


def test_gate_check_prints_the_comparison_and_fails_with_exit_status_1(candidate, versions, author, approver, ops,
                                                                        goldset):
    evaluate(versions[0], goldset, ops)
    evaluate(versions[1], goldset, ops)
    set_gate(candidate.policy, author, at_least=0.99)
    out = StringIO()
    with pytest.raises(SystemExit) as caught:
        call_command("gate", "check", "harassment", "--user", approver.username, stdout=out)
    assert caught.value.code == 1
    text = out.getvalue()
    assert "FAIL" in text and "published:  harassment@1: 0." in text
    assert "Δ (candidate − published, paired bootstrap 95 %): +" in text and "/comparisons/" in text
    assert "verdict:    FAIL: the candidate's f1 of violating is 0." in text and "< 0.99" in text


def test_gate_and_run_bad_input(candidate, prompts, small_goldset, ops, cli_user):
    with pytest.raises(CommandError, match="No policy 'nope'"):
        cli("gate", "show", "nope")
    sha = prompts[1].sha256[:12]
    with pytest.raises(CommandError, match="No golden set 'nope'"):
        cli("run", "create", "x", "--golden-set", "nope", "--prompt", sha, "--voter", "a:b")
    with pytest.raises(CommandError, match="Golden set 'small' has no frozen version 7"):
        cli("run", "create", "x", "--golden-set", "small@7", "--prompt", sha, "--voter", "a:b")
    with pytest.raises(CommandError, match="the version after '@' must be a number"):
        cli("run", "create", "x", "--golden-set", "small@x", "--prompt", sha, "--voter", "a:b")
    with pytest.raises(CommandError, match="not allowed with argument"):
        cli("run", "create", "x", "--golden-set", "small", "--sample", "s", "--prompt", sha, "--voter", "a:b")


def test_policy_publish_on_the_cli_is_blocked_then_overridden(candidate, author, approver, goldset):
    set_gate(candidate.policy, author, at_least=0.5)
    with pytest.raises(CommandError, match="harassment@2 cannot be published: publish gate .* failed: no evaluation"):
        cli("policy", "publish", "harassment@2", "--user", approver.username)
    out, _ = cli("policy", "publish", "harassment@2", "--user", approver.username, "--override-reason",
                 "Golden set relabelled this week; evaluated after.")
    assert out.strip() == "harassment@2 is published"
