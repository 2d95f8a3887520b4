"""The prevalence pages in a real browser (Debian's chromium) at 1,280 and 390 px: a pipeline user
opens the policy's page from home, sees the forest plot with the human-only interval beside each
PPI one, the strata and the design, the SIMULATED badge, and an estimate's page; an author is
refused. Screenshots go to test-artifacts/browser/."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from django.contrib.auth.models import Group

from content.models import ContentItem
from content.services.sampling import sample_create
from policies.compiler import ModelSettings
from policies.models import PromptTemplateVersion
from policies.services import prompt_version_compile
from prevalence.services import PrevalenceRequest, prevalence_estimate_create
from review.models import HumanLabel, Labeler, Vendor
from runs.models import ItemDecision, LLMEndpoint
from runs.services.runs import VoterSpec, labeling_run_create
from tests.browser.conftest import admin_login
from tests.browser.test_home_and_layouts import WIDTHS, assert_fits, follow
from tests.content.users import sampler

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LABELS = ["not_harassment", "insult", "hate_harassment", "threat"]


@pytest.fixture
def world(published, django_user_model):
    users = {}
    for name, group in (("ops", "labeling ops"), ("pipe", "pipeline"), ("writer", "policy author")):
        users[name] = django_user_model.objects.create_user(name, password=f"pw-{name}", is_staff=True)
        users[name].groups.add(Group.objects.get(name=group))
    rng = np.random.default_rng(5)
    ContentItem.objects.bulk_create(
        ContentItem(source="f", external_id=f"f{i:05d}", parts={"text": f"message {i}"}, target_part="text",
                    content_sha256=f"{i:064x}", metadata={"surface": "comments" if i % 5 < 3 else "messages"})
        for i in range(3000))
    sample = sample_create(name="impressions-nov", method="stratified", size=900, seed=7, source="f",
                           stratify_by="surface", acting_user=sampler())
    endpoint = LLMEndpoint.objects.create(name="sim", base_url="http://127.0.0.1:9/v1", is_simulator=True)
    prompt, _ = prompt_version_compile(
        policy_version=published, template_version=PromptTemplateVersion.objects.get(template__key="json_classifier"),
        settings=ModelSettings(model="sim-strong", seed=1), acting_user=None)
    run = labeling_run_create(name="nov-run", sample=sample, prompt_version=prompt,
                              voters=[VoterSpec(endpoint, m) for m in ("sim-a", "sim-b")], audit_share=0.25)
    members = list(sample.members.order_by("item_id").values_list("item_id", "stratum"))
    decisions, labels = [], []
    vendor = Vendor.objects.create(name="acme")
    labeler = Labeler.objects.create(vendor=vendor, external_id="l1")
    for item_id, stratum in members:
        truth = rng.choice(LABELS, p=[0.84, 0.1, 0.03, 0.03] if stratum == "comments" else [0.9, 0.06, 0.02, 0.02])
        hard = rng.random() < (0.5 if truth != "not_harassment" else 0.08) or truth == "threat"
        llm = truth if rng.random() < 0.92 else "not_harassment"
        if hard:
            reason = "always_review_label" if truth == "threat" else "disagreement"
            decisions.append(ItemDecision(run=run, item_id=item_id, outcome="human_review", reason=reason, label=llm))
        elif rng.random() < 0.25:
            decisions.append(ItemDecision(run=run, item_id=item_id, outcome="human_review", reason="audit", label=llm))
        else:
            decisions.append(ItemDecision(run=run, item_id=item_id, outcome="auto_accepted", reason="agreed",
                                          label=llm))
            continue
        labels.append(HumanLabel(item_id=item_id, policy_version=published, labeler=labeler, source="import",
                                 label=str(truth), labeled_at=datetime(2026, 11, 1, tzinfo=UTC)))
    ItemDecision.objects.bulk_create(decisions)
    HumanLabel.objects.bulk_create(labels)
    return prevalence_estimate_create(sample=sample, run=run, request=PrevalenceRequest(), acting_user=users["ops"])


def test_the_prevalence_pages_at_two_widths(page, world, artifacts_dir: Path) -> None:
    shots = artifacts_dir / "browser"
    shots.mkdir(exist_ok=True)
    admin_login(page, "writer", "pw-writer")
    assert page.goto("/prevalence/harassment/").status == 403

    admin_login(page, "pipe", "pw-pipe")
    page.goto("/")
    assert follow(page, "a.prevalence-link") == "/prevalence/harassment/"
    assert page.locator("#simulated").inner_text() == "SIMULATED VOTERS"
    # the headline of each violating label and of any violation, each with its human-only interval
    assert page.locator("#forest svg circle").count() == 2 * 5
    assert page.locator("#forest svg text", has_text="human-only").count() == 5
    assert page.locator("#forest svg text", has_text="any violation").count() == 1
    assert "any violation stratified-ppi" in page.locator("#forest + p").inner_text()
    assert "stratified" in page.locator("#design").inner_text()
    assert page.locator("#by-stratum th").all_inner_texts()[2:] == ["comments", "messages"]
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        assert_fits(page, f"prevalence page at {width}")
        page.screenshot(path=str(shots / f"60-prevalence-{width}.png"), full_page=True)

    page.set_viewport_size({"width": 1280, "height": 900})
    path = follow(page, "#label-any-violation a >> text=ppi++")
    assert path.startswith("/prevalence/estimates/")
    assert "%" in page.locator("#estimate").inner_text() and page.locator("#classical").count() == 1
    assert page.locator("#strata tbody tr").count() == 2
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        assert_fits(page, f"estimate page at {width}")
        page.screenshot(path=str(shots / f"61-prevalence-estimate-{width}.png"), full_page=True)
