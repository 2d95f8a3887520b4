"""The approver's confirmation page (the admin's publish step) with a publish gate: the verdict,
the comparison with the published version and its link, the block and the override reason; and
the gate's fields on the policy's admin form."""

from __future__ import annotations

import pytest
from django.urls import reverse

from evaluation.models import Comparison
from policies.models import PolicyVersionStatus
from tests.evaluation.gate_fixtures import *  # noqa: F403
from tests.evaluation.gate_fixtures import evaluate, set_gate
from touchstone.models import AuditEvent

pytestmark = pytest.mark.django_db


def publish_url(version):
    return reverse("admin:policies_policyversion_transition", args=[version.pk, "publish"])


def test_a_passing_gate_shows_the_comparison_and_publishes(client, candidate, versions, approver, author, ops,
                                                           goldset):
    evaluate(versions[0], goldset, ops)
    evaluation = evaluate(versions[1], goldset, ops)
    set_gate(candidate.policy, author, no_worse_than_published_by=0.05)
    client.force_login(approver)
    html = client.get(publish_url(candidate)).content.decode()
    comparison = Comparison.objects.get()
    assert 'id="gate-verdict">PASS' in html and f'href="/comparisons/{comparison.pk}/"' in html
    assert f'href="/evaluations/{evaluation.pk}/"' in html and "Δ candidate − published" in html
    assert "Publishing is blocked" not in html and "override_reason" not in html
    response = client.post(publish_url(candidate))
    assert response.status_code == 302
    candidate.refresh_from_db()
    assert candidate.status == PolicyVersionStatus.PUBLISHED


def test_a_failing_gate_blocks_and_the_override_needs_a_reason(client, candidate, versions, approver, author, ops,
                                                               goldset):
    evaluate(versions[1], goldset, ops)
    set_gate(candidate.policy, author, at_least=0.99)
    client.force_login(approver)
    html = client.get(publish_url(candidate)).content.decode()
    assert 'id="gate-verdict">FAIL' in html and 'id="gate-blocked"' in html
    assert 'name="override_reason"' in html and "required" in html and "Override the gate and publish" in html
    page = client.post(publish_url(candidate), follow=True).content.decode()
    assert "cannot be published" in page and "An approver may override with a written reason" in page
    candidate.refresh_from_db()
    assert candidate.status == PolicyVersionStatus.IN_REVIEW
    client.post(publish_url(candidate), {"override_reason": "Launch-critical fix; F1 re-measured next week."})
    candidate.refresh_from_db()
    assert candidate.status == PolicyVersionStatus.PUBLISHED
    event = AuditEvent.objects.get(event_type="policy_version.publish_gate_overridden")
    assert event.details["reason"] == "Launch-critical fix; F1 re-measured next week."


def test_the_gate_is_edited_in_the_policy_admin(client, published, author):
    client.force_login(author)
    url = reverse("admin:policies_policy_change", args=[published.policy.pk])
    form = {"slug": "harassment", "title": "Harassment and bullying", "owner": author.pk,
            "gate_golden_set": "gs", "gate_metric": "recall_at_fpr", "gate_label": "violating",
            "gate_max_fpr": "0.02", "gate_rule": "at_least", "gate_value": "0.7",
            "versions-TOTAL_FORMS": "0", "versions-INITIAL_FORMS": "0"}
    response = client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    published.policy.refresh_from_db()
    assert published.policy.publish_gate == {"golden_set": "gs", "metric": "recall_at_fpr", "label": "violating",
                                             "max_fpr": 0.02, "at_least": 0.7}
    assert AuditEvent.objects.filter(event_type="policy.publish_gate_set").count() == 1
    page = client.get(url).content.decode()
    assert 'value="gs"' in page and 'value="0.02"' in page
    bad = client.post(url, {**form, "gate_metric": "f1", "gate_label": "spam"})
    assert bad.status_code == 200 and "is not a label of the policy" in bad.content.decode()
    client.post(url, {**form, "gate_golden_set": ""})
    published.policy.refresh_from_db()
    assert published.policy.publish_gate is None
