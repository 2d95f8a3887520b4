"""The approver's publish confirmation with a publish gate, in a real browser at 1,280 px: a
passing gate shows the comparison with the published version and publishes; a failing gate
blocks, the override needs a written reason, and the audit log holds it."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import Group

from policies.models import PolicyVersion, PolicyVersionStatus
from tests.browser.conftest import admin_login
from tests.evaluation.gate_fixtures import *  # noqa: F403
from tests.evaluation.gate_fixtures import evaluate, set_gate
from touchstone.models import AuditEvent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def ops(db, django_user_model):
    user = django_user_model.objects.create_user("ops", password="pw-ops", is_staff=True)
    user.groups.add(Group.objects.get(name="labeling ops"))
    return user


def _open(page, version):
    page.set_viewport_size({"width": 1280, "height": 900})
    admin_login(page, "approver", "pw-approver")
    page.goto(f"/admin/policies/policyversion/{version.pk}/transition/publish/")
    page.wait_for_selector("#gate-verdict")


def _fits(page):
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_a_passing_gate_shows_the_comparison_and_publishes(page, candidate, versions, approver, author, ops, goldset,
                                                           artifacts_dir: Path):
    shots = artifacts_dir / "browser"
    shots.mkdir(exist_ok=True)
    evaluate(versions[0], goldset, ops)
    evaluate(versions[1], goldset, ops)
    set_gate(candidate.policy, author, no_worse_than_published_by=0.05)
    _open(page, candidate)
    assert page.inner_text("#gate-verdict") == "PASS"
    link = page.locator("#gate-publish_gate a[href^='/comparisons/']")
    assert link.count() == 1 and "f1 of violating: +" in link.inner_text()
    comparison_url = link.get_attribute("href")
    assert page.locator("#gate-blocked").count() == 0 and page.locator("#id_override_reason").count() == 0
    _fits(page)
    page.screenshot(path=str(shots / "gate-01-pass.png"), full_page=True)
    page.click("#confirm")
    page.wait_for_selector("text=is published")
    assert PolicyVersion.objects.get(pk=candidate.pk).status == PolicyVersionStatus.PUBLISHED
    page.goto(comparison_url)  # the approver can read the evidence the gate links to
    assert page.locator("h1, h2").first.is_visible() and "403" not in page.title()
    page.screenshot(path=str(shots / "gate-05-comparison-from-the-gate.png"), full_page=True)


def test_a_failing_gate_blocks_and_an_override_with_a_reason_publishes(page, candidate, versions, approver, author,
                                                                      ops, goldset, artifacts_dir: Path):
    shots = artifacts_dir / "browser"
    shots.mkdir(exist_ok=True)
    evaluate(versions[0], goldset, ops)
    evaluate(versions[1], goldset, ops)
    set_gate(candidate.policy, author, at_least=0.99)
    _open(page, candidate)
    assert page.inner_text("#gate-verdict") == "FAIL"
    assert "Publishing is blocked" in page.inner_text("#gate-blocked")
    assert "< 0.99" in page.inner_text("#gate-publish_gate")
    _fits(page)
    page.screenshot(path=str(shots / "gate-02-blocked.png"), full_page=True)
    page.click("#confirm")  # the reason is required: the browser does not submit
    assert page.evaluate("document.querySelector('#id_override_reason').validity.valueMissing")
    assert PolicyVersion.objects.get(pk=candidate.pk).status == PolicyVersionStatus.IN_REVIEW
    page.fill("#id_override_reason", "Threat recall is what matters for this launch; F1 re-measured next week.")
    page.screenshot(path=str(shots / "gate-03-override-reason.png"), full_page=True)
    page.click("#confirm")
    page.wait_for_selector("text=is published")
    assert PolicyVersion.objects.get(pk=candidate.pk).status == PolicyVersionStatus.PUBLISHED
    event = AuditEvent.objects.get(event_type="policy_version.publish_gate_overridden")
    assert event.details["reason"].startswith("Threat recall is what matters") and event.actor == approver
    assert event.details["verdicts"][0]["passed"] is False
    page.screenshot(path=str(shots / "gate-04-published.png"), full_page=True)
