"""A policy author edits, compiles, previews and diffs a draft; an approver publishes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.models import PolicyVersion, PolicyVersionStatus
from tests.browser.conftest import admin_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_author_edits_compiles_previews_diffs_and_approver_publishes(
        page, published, author, approver, artifacts_dir: Path) -> None:
    shots = artifacts_dir / "browser"
    shots.mkdir(exist_ok=True)

    admin_login(page, "author", "pw-author")
    page.goto(f"/admin/policies/policyversion/{published.pk}/change/")
    assert page.locator("textarea[name=text]").count() == 0  # published: read-only
    page.click("text=New draft from this")
    page.fill("input[name=reason]", "Cover pile-ons")
    page.click("#confirm")
    page.wait_for_selector("textarea[name=text]")
    draft = PolicyVersion.objects.get(policy=published.policy, number=2)
    assert page.url.endswith(f"/policyversion/{draft.pk}/change/")

    text = page.locator("textarea[name=text]")
    text.fill(text.input_value() + "\n5. Coordinated pile-ons count as threats (HAR-5).")
    definition = page.locator("textarea[name='labels-4-definition']")
    definition.fill(definition.input_value() + " This includes coordinated pile-ons.")
    page.click("input[name=_continue]")
    page.wait_for_selector("text=was changed successfully")
    page.screenshot(path=str(shots / "01-draft-edited.png"), full_page=True)

    page.click("text=Compile")
    page.select_option("select[name=template_version]", label="sectioned_policy@1")
    page.click("input[name=compile]")
    page.wait_for_selector("#system-prompt")
    system_prompt = page.inner_text("#system-prompt")
    assert "Coordinated pile-ons count as threats" in system_prompt
    assert "This includes coordinated pile-ons." in system_prompt
    assert int(page.inner_text("#total-tokens")) > int(page.inner_text("#system-tokens"))
    page.select_option("select[name=item]", "query-response")
    page.wait_for_function("document.querySelector('#user-message').innerText.includes('<response>')")
    page.screenshot(path=str(shots / "02-preview.png"), full_page=True)

    page.goto(f"/admin/policies/policyversion/{draft.pk}/diff/")
    policy_diff = page.inner_text("#policy-diff").lower()
    assert "harassment@1" in policy_diff and "harassment@2" in policy_diff
    assert page.locator("#policy-diff .diff_add, #policy-diff .diff_chg").count() >= 2
    assert page.locator("#prompt-diff .diff_add, #prompt-diff .diff_chg").count() >= 1
    page.screenshot(path=str(shots / "03-diff.png"), full_page=True)

    page.goto(f"/admin/policies/policyversion/{draft.pk}/change/")
    page.click("text=Submit for review")
    page.click("#confirm")
    page.wait_for_selector("text=is in review")
    assert page.get_by_role("link", name="Publish", exact=True).count() == 0  # authors cannot publish

    admin_login(page, "approver", "pw-approver")
    page.goto(f"/admin/policies/policyversion/{draft.pk}/change/")
    page.get_by_role("link", name="Publish", exact=True).click()
    page.wait_for_selector("text=A published version never changes")
    page.screenshot(path=str(shots / "04-publish-confirm.png"), full_page=True)
    page.click("#confirm")
    page.wait_for_selector("text=is published")
    page.screenshot(path=str(shots / "05-published.png"), full_page=True)

    draft.refresh_from_db()
    published.refresh_from_db()
    assert draft.status == PolicyVersionStatus.PUBLISHED and draft.approver == approver
    assert published.status == PolicyVersionStatus.RETIRED
