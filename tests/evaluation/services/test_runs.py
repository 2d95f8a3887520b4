"""A labeling run's decisions become a signal version when the run finishes (through its audit
event and the evaluation task), and again on demand (`signal import-run`), idempotently."""

from __future__ import annotations

import pytest
from django.db import transaction

from content.services.sampling import sample_create
from evaluation.models import Signal, SignalScore, SignalVersion
from evaluation.services import signal_version_from_run
from policies.compiler import ModelSettings
from policies.models import PromptTemplateVersion
from policies.services import prompt_version_compile
from runs.models import Judgement, LabelingRun, LLMEndpoint, RunStatus
from runs.services.runs import VoterSpec, labeling_run_create
from runs.services.work import run_finish_if_done
from tests.content.users import sampler
from touchstone.errors import InvalidStateTransition, PermissionDenied
from touchstone.models import AuditEvent

pytestmark = pytest.mark.django_db

# item index -> the three voters' (label, confidence); None: that voter failed
VOTES = {0: [("insult", 0.9), ("insult", 0.7), ("insult", 0.8)],
         1: [("not_harassment", 0.6), ("insult", 0.9), ("not_harassment", 1.0)],
         2: [("threat", 0.5), ("insult", 0.5), ("not_harassment", 0.5)],  # no majority
         3: [("insult", 0.9), None, ("insult", 0.9)]}  # a voter failed


@pytest.fixture
def running(published, items, approver):
    sample_create(name="four", method="uniform", size=4, seed=3, source="t", acting_user=sampler())
    endpoint = LLMEndpoint.objects.create(name="sim", base_url="http://127.0.0.1:9/v1", is_simulator=True)
    prompt, _ = prompt_version_compile(
        policy_version=published, template_version=PromptTemplateVersion.objects.get(template__key="json_classifier"),
        settings=ModelSettings(model="sim-strong", seed=1), acting_user=None)
    from content.models import Sample

    run = labeling_run_create(name="r1", sample=Sample.objects.get(name="four"), prompt_version=prompt,
                              voters=[VoterSpec(endpoint, m) for m in ("sim-a", "sim-b", "sim-c")],
                              confidence_threshold=0.8, audit_share=0, acting_user=approver)
    LabelingRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    members = list(run.sample.members.order_by("item_id").values_list("item_id", flat=True))
    voters = list(run.voters.order_by("position"))
    Judgement.objects.bulk_create(
        Judgement(run=run, item_id=item_id, voter=voter, status="failed" if vote is None else "ok",
                  label=vote[0] if vote else "", confidence=vote[1] if vote else None)
        for index, item_id in enumerate(members) for voter, vote in zip(voters, VOTES[index], strict=True))
    run.refresh_from_db()
    return run, members


def _finish(run, capture) -> None:
    with capture(execute=True), transaction.atomic():
        assert run_finish_if_done(run)


def test_a_finished_run_becomes_a_signal_version_of_its_policys_llm_signal(running, eager_tasks,
                                                                             django_capture_on_commit_callbacks):
    run, members = running
    _finish(run, django_capture_on_commit_callbacks)
    version = SignalVersion.objects.get(labeling_run=run)
    signal = version.signal
    assert (signal.name, signal.kind, signal.output_type, signal.policy.slug) == (
        "llm-harassment", "llm_labeling", "label", "harassment")
    assert (version.number, version.prompt_version, version.policy_version) == (
        1, run.prompt_version, run.prompt_version.policy_version)
    assert "sim-a@sim (SIMULATOR)" in version.notes and "r1" in version.notes
    scores = {s.item_id: (s.label, s.score) for s in SignalScore.objects.filter(version=version)}
    assert scores == {members[0]: ("insult", pytest.approx(0.8)), members[1]: ("not_harassment", pytest.approx(0.8))}
    event = AuditEvent.objects.get(event_type="signal_version.scores_from_run")
    assert event.actor is None
    assert event.details == {"labeling_run": "r1", "created": True, "added": 2,
                             "skipped": {"failed": 1, "no_majority": 1}}


def test_making_it_again_changes_nothing_and_a_retry_appends_the_new_decisions(running, ops):
    run, members = running
    with transaction.atomic():
        run_finish_if_done(run)  # no on-commit callbacks: as if the broker had been down
    assert not SignalVersion.objects.exists()
    version, added = signal_version_from_run(run=run, acting_user=ops)
    assert added == 2
    again, added_again = signal_version_from_run(run=run, acting_user=ops)
    assert (again.pk, added_again) == (version.pk, 0)
    # the failed voter's item is retried and decided: the next call appends only it
    run.decisions.filter(item_id=members[3]).delete()
    Judgement.objects.filter(run=run, status="failed").delete()
    Judgement.objects.create(run=run, item_id=members[3], voter=run.voters.get(position=1), status="ok",
                             label="insult", confidence=0.7)
    from runs.services.work import items_decide

    items_decide(run, [members[3]])
    _, added = signal_version_from_run(run=run, acting_user=ops)
    assert added == 1
    assert SignalScore.objects.filter(version=version).count() == 3
    assert Signal.objects.count() == 1


def test_a_run_that_has_not_finished_is_refused_and_pipelines_may_not_make_versions(running, ops, pipeline):
    run, _ = running
    with pytest.raises(InvalidStateTransition, match="is running"):
        signal_version_from_run(run=run, acting_user=ops)
    with pytest.raises(PermissionDenied, match="evaluation.add_signalversion"):
        signal_version_from_run(run=run, acting_user=pipeline)


def test_a_signal_name_of_another_kind_is_refused(running, ops, label_signal):
    run, _ = running
    with transaction.atomic():
        run_finish_if_done(run)
    from evaluation.services import SignalError, signal_create

    signal_create(name="rules", kind="rule", policy=run.prompt_version.policy_version.policy, output_type="label",
                  acting_user=ops)
    with pytest.raises(SignalError, match="not an LLM labeling signal"):
        signal_version_from_run(run=run, signal_name="rules", acting_user=ops)
    version, added = signal_version_from_run(run=run, signal_name="jury", acting_user=ops)
    assert (str(version), added) == ("jury@1", 2)


def test_an_unreachable_broker_leaves_the_run_finished_and_says_how_to_recover(running, caplog,
                                                                               django_capture_on_commit_callbacks):
    from conftest import celery_point_at
    from touchstone.celery import app

    saved = app.conf.broker_url, app.conf.result_backend
    celery_point_at("redis://127.0.0.1:1/0", None)  # nothing listens there
    try:
        _finish(running[0], django_capture_on_commit_callbacks)
    finally:
        celery_point_at(*saved)
    assert LabelingRun.objects.get(pk=running[0].pk).status == RunStatus.FINISHED
    assert "signal import-run" in caplog.text
    assert not SignalVersion.objects.exists()
