"""The monitor pages in a real browser (Debian's chromium) at 1,280 and 390 px: an ops user opens
the measurement overview from home, the monitors list, and a monitor with 14 daily cycles (a rise
on day 9, the reference line, the prompt-change overlap, an alert) and acknowledges the alert;
a policy author is refused. Screenshots go to test-artifacts/browser/."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import Group

from monitoring.models import Alert
from tests.browser.conftest import admin_login
from tests.browser.test_home_and_layouts import WIDTHS, assert_fits, follow
from tests.monitoring.page_world import monitor_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world(published, author, django_user_model):
    users = {}
    for name, group in (("ops", "labeling ops"), ("writer", "policy author")):
        users[name] = django_user_model.objects.create_user(name, password=f"pw-{name}", is_staff=True)
        users[name].groups.add(Group.objects.get(name=group))
    return monitor_world(published=published, author=author, user=users["ops"])


def test_the_monitor_pages_at_two_widths(page, world, artifacts_dir: Path) -> None:
    shots = artifacts_dir / "browser"
    shots.mkdir(exist_ok=True)
    admin_login(page, "writer", "pw-writer")
    assert page.goto("/monitors/").status == 403
    assert page.goto("/measurement/").status == 403

    admin_login(page, "ops", "pw-ops")
    page.goto("/")
    assert page.locator("#alerts tbody tr").count() == 1
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=str(shots / "70-home-alerts-1280.png"), full_page=False)
    assert follow(page, "#measurement-link a >> text=Measurement overview") == "/measurement/"
    assert page.locator("#policy-harassment .sparkline").count() == 1
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        assert_fits(page, f"measurement overview at {width}")
        page.screenshot(path=str(shots / f"71-measurement-{width}.png"), full_page=True)

    page.set_viewport_size({"width": 1280, "height": 900})
    assert follow(page, "#policy-harassment a >> text=monitor harassment-daily") == "/monitors/harassment-daily/"
    assert page.locator("#simulated").inner_text() == "SIMULATED VOTERS"
    chart = page.locator("#series-insult .wide svg")
    assert chart.locator("text.legend").all_text_contents() == [
        "ppi++ (LLM + people)", "human-only (same people's labels)", "hajek", "v2 ppi++ (prompt-change overlap)",
        "reference: the demo's known prevalence"]
    assert chart.locator("polygon.band").count() >= 3  # ppi++, human-only, the overlap version
    assert chart.locator(".alert-mark").count() == 1
    assert page.locator("#agreement .wide svg text.legend").count() == 2
    assert page.locator("#cycles tbody tr").count() == 14
    assert "unreachable" in page.locator("#cycles").inner_text()
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        assert_fits(page, f"monitor page at {width}")
        page.screenshot(path=str(shots / f"72-monitor-{width}.png"), full_page=True)
        shown = page.locator("#series-insult figure:visible svg")
        assert shown.count() == 1 and float(shown.get_attribute("width")) == (860 if width > 640 else 420)

    page.set_viewport_size({"width": 1280, "height": 900})
    alert = world.alert
    page.fill(f"#alert-{alert.pk} input[name=reason]", "a real rise: sent to the harassment team")
    follow(page, f"#alert-{alert.pk} button")
    assert "acknowledged" in page.locator(".messages").inner_text()
    assert Alert.objects.get(pk=alert.pk).acknowledge_reason == "a real rise: sent to the harassment team"
    assert "sent to the harassment team" in page.locator(f"#alert-{alert.pk}").inner_text()

    assert follow(page, "#ts-topbar a >> text=Monitors") == "/monitors/"
    assert page.locator("#monitor-harassment-daily").count() == 1
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        assert_fits(page, f"monitors list at {width}")
        page.screenshot(path=str(shots / f"73-monitors-{width}.png"), full_page=True)
