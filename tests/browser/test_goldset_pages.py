"""Ops reads a golden-set version page (stats, charts, diff), downloads an export, and the API
docs render offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from goldsets.freeze import FreezeRule
from goldsets.services import goldset_version_build, goldset_version_freeze_request
from tests.browser.conftest import admin_login
from tests.goldsets.conftest import label_items

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_version_page_charts_diff_export_and_api_docs(page, published, django_user_model, artifacts_dir: Path):
    shots = artifacts_dir / "browser"
    shots.mkdir(exist_ok=True)
    patterns = ([["insult"] * 3] * 12 + [["not_harassment"] * 3] * 20 + [["threat", "threat", "insult"]] * 8
                + [["hate_harassment", "hate_harassment", "hate_harassment"]] * 4 + [["insult", "insult"]] * 6)
    label_items(published, patterns)
    for rule in (FreezeRule(), FreezeRule(min_labels=2)):
        goldset_version_build(version_id=goldset_version_freeze_request(
            name="harassment-gold", policy_version=published, rule=rule, changelog=f"min {rule.min_labels}").pk)
    django_user_model.objects.create_superuser("boss", password="pw-boss")
    admin_login(page, "boss", "pw-boss")

    page.goto("/goldsets/harassment-gold/v2/")
    assert page.inner_text("#items") == "50"
    assert "v1 → v2: added 6" in page.inner_text("#diff")
    for chart in ("#intervals svg", "#label-distribution svg", "#kappa-heatmap svg"):
        box = page.locator(chart).bounding_box()
        assert box and box["width"] > 200 and box["height"] > 50, chart
    assert page.locator("#label-distribution rect").count() == 4
    assert page.locator("#labelers tbody tr").count() == 3
    page.screenshot(path=str(shots / "10-goldset-version.png"), full_page=True)

    with page.expect_download() as download:
        page.click("#exports >> text=JSONL")
    lines = Path(download.value.path()).read_text().splitlines()
    assert len(lines) == 50 and json.loads(lines[0])["gold_label"]

    page.goto("/admin/goldsets/goldenset/")
    page.click("text=harassment-gold")
    page.wait_for_selector("text=statistics")
    page.screenshot(path=str(shots / "11-goldset-admin.png"), full_page=True)

    failed = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.goto("/api/docs/")
    page.wait_for_selector(".swagger-ui .opblock", timeout=20_000)
    assert page.locator(".opblock").count() >= 8 and not failed
    page.screenshot(path=str(shots / "12-api-docs.png"), full_page=True)
