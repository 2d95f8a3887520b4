"""Labeling ops reads the labelers-over-time pages in a browser, on a desk and on a phone: the
drifting labeler's week stands out on the labeler page, the vendor page and the queues page."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import Group

from tests.browser.conftest import admin_login
from tests.review.quality_world import quality_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", [1280, 390])
def test_labeler_and_vendor_pages_show_the_drift(page, published, django_user_model, artifacts_dir: Path,
                                                 width: int):
    world = quality_world(published, weeks=10)
    ops = django_user_model.objects.create_user("ops", password="pw-ops", is_staff=True)
    ops.groups.add(Group.objects.get(name="labeling ops"))
    page.set_viewport_size({"width": width, "height": 900})
    admin_login(page, "ops", "pw-ops")
    shots = artifacts_dir / "browser"
    shots.mkdir(exist_ok=True)

    page.goto("/queues/")
    flags = page.locator("#queue-acme .drift-flags")
    assert "bob" in flags.inner_text() and "ann" not in flags.inner_text()
    if width == 1280:
        page.screenshot(path=str(shots / "62-queues-drift.png"), full_page=True)
    flags.locator("a", has_text="bob").click()
    page.wait_for_url(f"**/labelers/{world.bob.pk}/quality/")
    assert page.locator("#drift-status").inner_text() == "flagged"
    assert page.locator("svg.weekly:visible").count() == 4
    assert page.locator("#chart-accuracy svg:visible rect.drift").count() == 1
    assert page.locator("#chart-accuracy svg:visible line.trailing").count() >= 8
    assert page.locator("#weeks tbody tr.drift").count() == 1
    assert page.locator("#misses tbody tr").count() == 20
    # nothing spills sideways: the page is as wide as the viewport
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    chart = page.locator("#chart-accuracy svg:visible").bounding_box()
    assert chart["width"] <= width
    page.screenshot(path=str(shots / f"60-labeler-quality-{width}.png"), full_page=True)

    page.click("h1 a")  # the vendor
    page.wait_for_url(f"**/vendors/{world.vendor.pk}/quality/**")
    rows = page.locator("#labelers tbody tr")
    assert rows.count() == 3
    assert page.locator("#labelers tbody tr.drift").inner_text().startswith("bob")
    assert page.locator("svg.weekly:visible").count() == 4
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.screenshot(path=str(shots / f"61-vendor-quality-{width}.png"), full_page=True)
