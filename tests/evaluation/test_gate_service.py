"""The publish gate: its verdict (at least X on the candidate's point estimate; non-inferiority on
the paired bootstrap's lower bound), publish blocked without evidence or with a failing verdict,
the override (approvers only, with a written reason, audited), and the gate's definition."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission

from evaluation.models import Comparison
from evaluation.services import ComparisonOptions, comparison_create
from evaluation.services.gates import publish_gate_verdict
from policies import prepublish
from policies.models import PolicyVersionStatus
from policies.services import PublishGateFailed, PublishGateInvalid, policy_publish_gate_set, policy_version_publish
from tests.evaluation.gate_fixtures import *  # noqa: F403
from tests.evaluation.gate_fixtures import evaluate, set_gate
from touchstone.errors import PermissionDenied
from touchstone.models import AuditEvent

pytestmark = pytest.mark.django_db


def _published_event(version):
    return AuditEvent.objects.get(event_type="policy_version.published", object_id=str(version.pk))


def test_a_policy_without_a_gate_publishes_as_before(candidate, approver):
    version = policy_version_publish(version=candidate, acting_user=approver)
    assert version.status == PolicyVersionStatus.PUBLISHED
    assert "prepublish" not in _published_event(version).details
    assert publish_gate_verdict(version=version, acting_user=approver) is None


def test_no_evaluation_of_the_candidate_blocks_with_a_clear_message(candidate, versions, approver, author, goldset):
    set_gate(candidate.policy, author, at_least=0.5)
    with pytest.raises(PublishGateFailed) as caught:
        policy_version_publish(version=candidate, acting_user=approver)
    message = caught.value.message
    assert "no evaluation of a prompt of harassment@2 on gs@1" in message
    assert "run create" in message and "--golden-set gs@1" in message and "evaluate llm-harassment@" in message
    candidate.refresh_from_db()
    assert candidate.status == PolicyVersionStatus.IN_REVIEW
    assert not AuditEvent.objects.filter(event_type="policy_version.published", object_id=str(candidate.pk)).exists()
    blocked = AuditEvent.objects.get(event_type="policy_version.publish_blocked")
    assert blocked.actor == approver and blocked.details["verdicts"][0]["details"]["missing"] == [
        "an evaluation of harassment@2's prompt on gs@1"]


def test_a_golden_set_without_a_frozen_version_blocks(candidate, author, approver, published):
    set_gate(candidate.policy, author, golden_set="nowhere", at_least=0.5)
    with pytest.raises(PublishGateFailed, match="golden set nowhere .newest frozen. has no frozen version"):
        policy_version_publish(version=candidate, acting_user=approver)


def test_at_least_passes_on_the_point_estimate_and_publishes(candidate, versions, approver, author, ops, goldset):
    evaluation = evaluate(versions[1], goldset, ops)
    f1 = evaluation.document["binary"]["f1"]
    assert f1["ci_low"] < f1["value"]
    # Between the CI's lower bound and the point estimate: the rule reads the point estimate.
    set_gate(candidate.policy, author, at_least=round((f1["ci_low"] + f1["value"]) / 2, 6))
    verdict = publish_gate_verdict(version=candidate, acting_user=approver)
    assert verdict.passed and verdict.candidate_evaluation == evaluation.pk
    assert verdict.candidate_value["value"] == pytest.approx(f1["value"])
    version = policy_version_publish(version=candidate, acting_user=approver)
    assert version.status == PolicyVersionStatus.PUBLISHED
    details = _published_event(version).details
    assert details["prepublish"][0]["passed"] is True and "override" not in details


def test_at_least_fails_and_blocks_then_an_approver_overrides_with_a_reason(candidate, versions, approver, author,
                                                                            ops, goldset):
    f1 = evaluate(versions[1], goldset, ops).document["binary"]["f1"]["value"]
    set_gate(candidate.policy, author, at_least=round(f1 + 0.001, 6))
    with pytest.raises(PublishGateFailed, match=r"the candidate's f1 of violating is 0\.\d{3} < "):
        policy_version_publish(version=candidate, acting_user=approver)
    with pytest.raises(PublishGateFailed):  # a reason of blanks is no reason
        policy_version_publish(version=candidate, acting_user=approver, override_reason="   ")
    version = policy_version_publish(version=candidate, acting_user=approver,
                                     override_reason="Threat recall matters more this quarter; F1 is 0.001 short.")
    assert version.status == PolicyVersionStatus.PUBLISHED
    details = _published_event(version).details
    assert details["override"]["reason"].startswith("Threat recall matters more")
    assert details["prepublish"][0]["passed"] is False
    assert details["prepublish"][0]["details"]["candidate_value"]["value"] == pytest.approx(f1)
    overridden = AuditEvent.objects.get(event_type="policy_version.publish_gate_overridden")
    assert overridden.actor == approver and overridden.details["reason"] == details["override"]["reason"]


def test_ops_cannot_override_and_neither_can_a_publisher_without_the_override_permission(
        candidate, versions, approver, author, ops, goldset, django_user_model):
    set_gate(candidate.policy, author, at_least=1.0)
    evaluate(versions[1], goldset, ops)
    with pytest.raises(PermissionDenied):
        policy_version_publish(version=candidate, acting_user=ops, override_reason="ops says so")
    publisher = django_user_model.objects.create_user(username="publisher", password="pw", is_staff=True)
    group = Group.objects.create(name="publishers only")
    group.permissions.add(Permission.objects.get(codename="publish_policyversion"))
    publisher.groups.add(group)
    with pytest.raises(PermissionDenied, match="override_publish_gate"):
        policy_version_publish(version=candidate, acting_user=publisher, override_reason="I insist")
    candidate.refresh_from_db()
    assert candidate.status == PolicyVersionStatus.IN_REVIEW
    assert approver.has_perm("policies.override_publish_gate") and not ops.has_perm("policies.override_publish_gate")


def test_non_inferiority_reads_the_paired_bootstrap_lower_bound(candidate, goldset, prompts, llm_signal, approver,
                                                               author, ops):
    from tests.evaluation.comparisons.conftest import label_arrays
    from tests.evaluation.gate_fixtures import labeled_version

    _, worse, better = label_arrays()
    published_version = labeled_version(llm_signal, prompts[0], better, ops)  # right 80 %
    candidate_version = labeled_version(llm_signal, prompts[1], worse, ops)  # right 70 %: ΔF1 < 0
    evaluate(published_version, goldset, ops)
    evaluate(candidate_version, goldset, ops)
    set_gate(candidate.policy, author, no_worse_than_published_by=0.5)
    verdict = publish_gate_verdict(version=candidate, acting_user=approver)
    comparison = Comparison.objects.get(pk=verdict.comparison)  # computed and stored by the gate
    assert (comparison.signal_version_a, comparison.signal_version_b) == (published_version, candidate_version)
    row = comparison.document["binary"]["f1"]
    assert verdict.delta["ci_low"] == pytest.approx(row["ci_low"])
    assert verdict.delta["delta"] == pytest.approx(row["delta"])
    # An independent comparison with the same options gives the same bound (seeded bootstrap).
    again = comparison_create(signal_version_a=published_version, signal_version_b=candidate_version,
                              golden_set_version=goldset, options=ComparisonOptions(), acting_user=ops)
    assert again.document["binary"]["f1"]["ci_low"] == pytest.approx(row["ci_low"])
    low = row["ci_low"]
    assert -0.5 < low < row["delta"] < 0 and verdict.passed
    # δ just above and just below −low flips the verdict; a stored comparison is reused.
    set_gate(candidate.policy, author, no_worse_than_published_by=round(-low + 0.001, 6))
    assert publish_gate_verdict(version=candidate, acting_user=approver).passed
    set_gate(candidate.policy, author, no_worse_than_published_by=round(-low - 0.001, 6))
    failing = publish_gate_verdict(version=candidate, acting_user=approver)
    assert not failing.passed and f"lower 95 % bound of Δf1 (candidate − published) is {low:+.3f} <" in failing.reason
    assert Comparison.objects.filter(signal_version_a=published_version).count() == 2  # the gate's and `again`
    with pytest.raises(PublishGateFailed):
        policy_version_publish(version=candidate, acting_user=approver)


def test_non_inferiority_fails_when_the_candidate_is_clearly_worse(candidate, goldset, prompts, llm_signal, approver,
                                                                   author, ops):
    from tests.evaluation.comparisons.conftest import label_arrays
    from tests.evaluation.gate_fixtures import labeled_version

    gold, worse, better = label_arrays()
    evaluate(labeled_version(llm_signal, prompts[0], gold, ops), goldset, ops)  # published: always right
    evaluate(labeled_version(llm_signal, prompts[1], worse, ops), goldset, ops)  # candidate: right 70 %
    set_gate(candidate.policy, author, no_worse_than_published_by=0.05)
    verdict = publish_gate_verdict(version=candidate, acting_user=approver)
    assert not verdict.passed and verdict.delta["ci_high"] < -0.05
    with pytest.raises(PublishGateFailed, match="lower 95 % bound of Δf1"):
        policy_version_publish(version=candidate, acting_user=approver)


def test_non_inferiority_without_the_published_versions_evaluation_blocks(candidate, versions, approver, author,
                                                                          ops, goldset):
    evaluate(versions[1], goldset, ops)
    set_gate(candidate.policy, author, no_worse_than_published_by=0.02)
    with pytest.raises(PublishGateFailed, match="no evaluation of a prompt of the published harassment@1 on gs@1"):
        policy_version_publish(version=candidate, acting_user=approver)


def test_a_label_gate_reads_the_per_label_rows(candidate, versions, approver, author, ops, goldset):
    evaluation = evaluate(versions[1], goldset, ops)
    insult = next(r for r in evaluation.document["per_label"] if r["label"] == "insult")
    set_gate(candidate.policy, author, metric="recall", label="insult", at_least=0.0)
    verdict = publish_gate_verdict(version=candidate, acting_user=approver)
    assert verdict.candidate_value["value"] == pytest.approx(insult["recall"]["value"]) and verdict.passed


def test_recall_at_fpr_of_a_label_signal_is_undefined_and_fails(candidate, versions, approver, author, ops, goldset):
    evaluate(versions[1], goldset, ops)
    set_gate(candidate.policy, author, metric="recall_at_fpr", at_least=0.1)
    verdict = publish_gate_verdict(version=candidate, acting_user=approver)
    assert not verdict.passed and "needs a score signal" in verdict.reason


def test_a_gate_without_a_registered_check_fails_closed(candidate, author, approver, published, monkeypatch):
    set_gate(candidate.policy, author, at_least=0.5)
    monkeypatch.setattr(prepublish, "_CHECKS", {})
    with pytest.raises(PublishGateFailed, match="no app that computes its verdict is installed"):
        policy_version_publish(version=candidate, acting_user=approver)


def test_the_gate_definition_is_validated_and_needs_change_policy(published, author, approver):
    with pytest.raises(PublishGateInvalid, match="publish_gate.metric: 'auc'"):
        policy_publish_gate_set(policy=published.policy, gate={"golden_set": "gs", "metric": "auc", "at_least": 1},
                                acting_user=author)
    with pytest.raises(PublishGateInvalid, match="publish_gate.label: 'spam' is not a label"):
        set_gate(published.policy, author, label="spam", at_least=0.5)
    with pytest.raises(PublishGateInvalid, match="exactly one rule"):
        set_gate(published.policy, author, at_least=0.5, no_worse_than_published_by=0.1)
    with pytest.raises(PermissionDenied):
        set_gate(published.policy, approver, at_least=0.5)
    policy = set_gate(published.policy, author, at_least=0.75)
    assert policy.publish_gate == {"golden_set": "gs", "metric": "f1", "label": "violating", "at_least": 0.75}
    event = AuditEvent.objects.get(event_type="policy.publish_gate_set")
    assert event.details["before"] is None and event.details["after"]["at_least"] == 0.75
    policy_publish_gate_set(policy=policy, gate=None, acting_user=author)
    policy.refresh_from_db()
    assert policy.publish_gate is None


def test_the_published_side_is_paired_with_the_candidates_template_and_model(candidate, goldset, prompts, llm_signal,
                                                                            approver, author, ops):
    from policies.compiler import ModelSettings
    from policies.services import prompt_version_compile
    from tests.evaluation.comparisons.conftest import label_arrays
    from tests.evaluation.gate_fixtures import labeled_version

    gold, worse, better = label_arrays()
    weak, _ = prompt_version_compile(policy_version=prompts[0].policy_version,
                                     template_version=prompts[0].template_version,
                                     settings=ModelSettings(model="sim-weak"), acting_user=author)
    same = labeled_version(llm_signal, prompts[0], worse, ops)  # same template and model as the candidate
    evaluate(same, goldset, ops)
    evaluate(labeled_version(llm_signal, prompts[1], better, ops), goldset, ops)
    evaluate(labeled_version(llm_signal, weak, gold, ops), goldset, ops)  # newest, but another model
    set_gate(candidate.policy, author, no_worse_than_published_by=0.05)
    verdict = publish_gate_verdict(version=candidate, acting_user=approver)
    assert verdict.published_signal_version == str(same) and verdict.passed
