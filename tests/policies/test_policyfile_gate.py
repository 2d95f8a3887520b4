"""The policy file's ``publish_gate:`` block: parsed, validated (file:line: field: reason),
written back by the export, and stored on the policy by ``policy import``."""

from __future__ import annotations

import pytest

from policies.gate import GateProblem, PublishGateSpec, publish_gate_from_data
from policies.policyfile import format_policy_file, parse_policy_file, parse_policy_file_full
from policies.selectors import policy_export
from policies.services import policy_import
from touchstone.errors import LocatedError
from touchstone.lines import LineError
from touchstone.models import AuditEvent


def _with_gate(text: str, block: str) -> str:
    head, sep, body = text.partition("\n---\n")
    return f"{head}\npublish_gate:\n{block}{sep}{body}"


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


def test_the_block_is_parsed_and_does_not_change_the_spec(harassment_text):
    text = _with_gate(harassment_text, "  golden_set: harassment-gold\n  version: 3\n  metric: recall_at_fpr\n"
                                       "  max_fpr: 0.02\n  no_worse_than_published_by: 0.01\n")
    parsed = parse_policy_file_full(text, path="h.md")
    assert parsed.publish_gate == PublishGateSpec(golden_set="harassment-gold", version=3, metric="recall_at_fpr",
                                                  max_fpr=0.02, rule="no_worse_than_published_by", value=0.01)
    assert parsed.spec == parse_policy_file(harassment_text, path="h.md")
    assert parse_policy_file_full(harassment_text).publish_gate is None
    again = parse_policy_file_full(format_policy_file(parsed.spec, parsed.publish_gate))
    assert again == parsed


def test_defaults_label_violating_and_max_fpr_one_percent():
    gate = publish_gate_from_data({"golden_set": "g", "metric": "recall_at_fpr", "at_least": 0.6})
    assert (gate.label, gate.max_fpr, gate.version, gate.rule, gate.value) == ("violating", 0.01, None, "at_least", 0.6)
    assert gate.rule_text == "the candidate's recall at FPR <= 0.01 of violating (point estimate) >= 0.6"


@pytest.mark.parametrize(("block", "needle", "field", "reason"), [
    ("  golden_set: g\n  metric: auc\n  at_least: 0.5\n", "metric: auc", "publish_gate.metric",
     "'auc': use one of precision, recall, f1, recall_at_fpr"),
    ("  golden_set: g\n  metric: f1\n  at_least: 1.5\n", "at_least: 1.5", "publish_gate.at_least",
     "1.5 is not in [0, 1]"),
    ("  golden_set: g\n  metric: f1\n  at_least: high\n", "at_least: high", "publish_gate.at_least",
     "expected a number, got 'high'"),
    ("  golden_set: g\n  metric: f1\n", "golden_set: g", "publish_gate.at_least",
     "give exactly one rule: at_least or no_worse_than_published_by"),
    ("  golden_set: g\n  metric: f1\n  at_least: 0.5\n  no_worse_than_published_by: 0.1\n",
     "no_worse_than_published_by", "publish_gate.no_worse_than_published_by", "give exactly one rule"),
    ("  golden_set: g\n  metric: f1\n  label: spam\n  at_least: 0.5\n", "label: spam", "publish_gate.label",
     "'spam' is not a label of the policy"),
    ("  golden_set: g\n  metric: f1\n  max_fpr: 0.1\n  at_least: 0.5\n", "max_fpr", "publish_gate.max_fpr",
     "only the metric recall_at_fpr has a max_fpr"),
    ("  golden_set: g\n  version: 0\n  metric: f1\n  at_least: 0.5\n", "version: 0", "publish_gate.version",
     "a golden-set version number >= 1"),
    ("  golden_set: g\n  metric: f1\n  at_least: 0.5\n  threshold: 0.3\n", "threshold: 0.3",
     "publish_gate.threshold", "unknown field"),
    ("  metric: f1\n  at_least: 0.5\n", "metric: f1", "publish_gate.golden_set", "missing: name the golden set"),
    ("  golden_set: 'a b'\n  metric: f1\n  at_least: 0.5\n", "golden_set: 'a b'", "publish_gate.golden_set",
     "is not a golden set name"),
])
def test_bad_values_name_file_line_and_field(harassment_text, block, needle, field, reason):
    text = _with_gate(harassment_text, block)
    with pytest.raises(LineError) as caught:
        parse_policy_file_full(text, path="h.md")
    error = caught.value
    assert (error.path, error.field) == ("h.md", field)
    assert reason in error.reason
    assert error.line == _line_of(text, needle)
    assert str(error).startswith(f"h.md:{error.line}: {field}: ")


def test_a_gate_that_is_not_a_mapping(harassment_text):
    head, sep, body = harassment_text.partition("\n---\n")
    with pytest.raises(LineError, match="publish_gate: expected a mapping"):
        parse_policy_file_full(f"{head}\npublish_gate: yes{sep}{body}", path="h.md")
    with pytest.raises(GateProblem):
        publish_gate_from_data(["f1"])


@pytest.mark.django_db
def test_import_stores_the_gate_audits_it_and_export_writes_it_back(harassment_text, author):
    text = _with_gate(harassment_text, "  golden_set: gs\n  metric: f1\n  at_least: 0.8\n")
    version = policy_import(text=text, path="harassment.md", acting_user=author).version
    policy = version.policy
    assert policy.publish_gate == {"golden_set": "gs", "metric": "f1", "label": "violating", "at_least": 0.8}
    event = AuditEvent.objects.get(event_type="policy.publish_gate_set")
    assert event.details["source"] == "harassment.md" and event.details["before"] is None
    exported = policy_export(version=version)
    assert "publish_gate:\n  golden_set: gs\n  metric: f1\n  label: violating\n  at_least: 0.8\n" in exported
    # Re-importing the same file changes nothing; a file without the block leaves the gate alone.
    assert policy_import(text=text, path="harassment.md", acting_user=author).created is False
    policy_import(text=harassment_text, path="harassment.md", acting_user=author)
    policy.refresh_from_db()
    assert policy.publish_gate["at_least"] == 0.8
    assert AuditEvent.objects.filter(event_type="policy.publish_gate_set").count() == 1


@pytest.mark.django_db
def test_import_of_a_bad_gate_writes_nothing(harassment_text, author):
    text = _with_gate(harassment_text, "  golden_set: gs\n  metric: f2\n  at_least: 0.8\n")
    with pytest.raises(LocatedError) as caught:
        policy_import(text=text, path="harassment.md", acting_user=author)
    assert caught.value.extra["field"] == "publish_gate.metric"
    assert not AuditEvent.objects.exists()
