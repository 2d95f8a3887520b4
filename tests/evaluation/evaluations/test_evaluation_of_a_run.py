"""A labeling run's signal version evaluated: the errors carry the voters' rationale and their
violated rule ids next to the human labels and the LLM decision the golden set froze."""

from __future__ import annotations

import pytest
from django.db import transaction

from content.models import Sample
from content.services.sampling import sample_create
from evaluation.services import EvaluationOptions, evaluation_create, signal_version_from_run
from policies.compiler import ModelSettings
from policies.models import PromptTemplateVersion
from policies.services import prompt_version_compile
from runs.models import Judgement, LabelingRun, LLMEndpoint, RunStatus
from runs.services.runs import VoterSpec, labeling_run_create
from runs.services.work import run_finish_if_done
from tests.content.users import sampler

from .conftest import frozen_goldset

pytestmark = pytest.mark.django_db

# item index -> the voters' (label, confidence, violated rule ids, rationale)
VOTES = {0: [("insult", 0.9, ["HAR-1"], "calls the user an idiot")] * 3,
         1: [("not_harassment", 0.6, [], "a heated but civil disagreement")] * 3,
         2: [("threat", 0.9, ["HAR-4"], "says they will find the user")] * 3,
         3: [("not_harassment", 0.7, [], "self-directed profanity")] * 3}
GOLD = {0: "not_harassment", 1: "insult", 2: "threat", 3: "not_harassment"}


@pytest.fixture
def run_version(published, items, approver, ops):
    sample_create(name="four", method="uniform", size=4, seed=3, source="t", acting_user=sampler())
    endpoint = LLMEndpoint.objects.create(name="sim", base_url="http://127.0.0.1:9/v1", is_simulator=True)
    prompt, _ = prompt_version_compile(
        policy_version=published, template_version=PromptTemplateVersion.objects.get(template__key="json_classifier"),
        settings=ModelSettings(model="sim-strong", seed=1), acting_user=None)
    run = labeling_run_create(name="r1", sample=Sample.objects.get(name="four"), prompt_version=prompt,
                              voters=[VoterSpec(endpoint, m) for m in ("sim-a", "sim-b", "sim-c")],
                              confidence_threshold=0.8, audit_share=0, acting_user=approver)
    LabelingRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    members = list(run.sample.members.order_by("item_id").values_list("item_id", flat=True))
    voters = list(run.voters.order_by("position"))
    Judgement.objects.bulk_create(
        Judgement(run=run, item_id=item_id, voter=voter, status="ok", label=label, confidence=confidence,
                  violated_rule_ids=rules, rationale=why)
        for index, item_id in enumerate(members)
        for voter, (label, confidence, rules, why) in zip(voters, VOTES[index], strict=True))
    with transaction.atomic():
        assert run_finish_if_done(LabelingRun.objects.get(pk=run.pk))
    version, added = signal_version_from_run(run=LabelingRun.objects.get(pk=run.pk), acting_user=ops)
    assert added == 4
    externals = dict(items[0].__class__.objects.filter(pk__in=members).values_list("pk", "external_id"))
    goldset = frozen_goldset(published, [
        (externals[item_id], GOLD[i], {}, [{"vendor": "acme", "role": "labeler", "label": GOLD[i]}],
         {"run": "r1", "label": VOTES[i][0][0], "confidence": VOTES[i][0][1], "outcome": "auto", "votes": {}})
        for i, item_id in enumerate(members)], source="t")
    return version, goldset, members, externals


def test_errors_show_the_voters_rationale_and_rule_ids(run_version, ops):
    version, goldset, members, externals = run_version
    doc = evaluation_create(signal_version=version, golden_set_version=goldset,
                            options=EvaluationOptions(n_resamples=50), acting_user=ops).document
    assert doc["kind"] == "label" and doc["coverage"]["scored"] == 4
    assert doc["binary"]["tp"] == 1 and doc["binary"]["fp"] == 1 and doc["binary"]["fn"] == 1
    fp, fn = doc["errors"]["false_positives"], doc["errors"]["false_negatives"]
    fp_ref, fn_ref = f"t:{externals[members[0]]}", f"t:{externals[members[1]]}"
    assert fp["by_rule"] == [{"rule_id": "HAR-1", "count": 1, "examples": [fp_ref]}]
    assert fn["by_rule"] == [{"rule_id": "(no rule id)", "count": 1, "examples": [fn_ref]}]
    assert fp["by_label"] == [{"label": "insult", "count": 1, "examples": [fp_ref]}]
    assert doc["errors"]["rule_ids_from"] == ["gold labels", "signal (its labeling run's voters)"]
    example = doc["errors"]["examples"][fp_ref]
    assert example["gold_label"] == "not_harassment" and example["signal"]["label"] == "insult"
    assert example["human_labels"] == [{"vendor": "acme", "role": "labeler", "label": "not_harassment",
                                        "rule_ids": None}]
    assert example["llm"]["label"] == "insult"
    assert [v["rationale"] for v in example["rationale"]] == ["calls the user an idiot"] * 3
    assert doc["calibration"]["event"] == "the signal's label is the gold label"


def test_a_signal_from_simulated_voters_is_labelled_simulated_on_the_page_and_the_cli(run_version, ops, client):
    from io import StringIO

    from django.core.management import call_command

    version, goldset, _, _ = run_version
    evaluation = evaluation_create(signal_version=version, golden_set_version=goldset,
                                   options=EvaluationOptions(n_resamples=20), acting_user=ops)
    client.force_login(ops)
    html = client.get(f"/evaluations/{evaluation.pk}/").content.decode()
    assert "SIMULATED VOTERS" in html and "sim-a@sim" in html
    out = StringIO()
    call_command("evaluate", f"{version.signal.name}@{version.number}", "--golden-set",
                 f"{goldset.golden_set.name}@{goldset.number}", "--resamples", "20", "--user", ops.username, stdout=out)
    assert "[SIMULATED VOTERS]" in out.getvalue() and "sim-a@sim, sim-b@sim, sim-c@sim" in out.getvalue()
