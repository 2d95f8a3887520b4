"""The monitor pages, the measurement overview and the home page's alerts: what they show, the
acknowledge button (audited), and a bounded number of queries."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group

from monitoring import charts
from monitoring.models import Alert
from tests.monitoring.page_world import DAYS, monitor_world
from touchstone.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(published, author, ops):
    return monitor_world(published=published, author=author, user=ops)


@pytest.fixture
def viewer(django_user_model):
    user = django_user_model.objects.create_user(username="pipe", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name="pipeline"))
    return user


def test_monitors_list(client, world, ops):
    client.force_login(ops)
    html = client.get("/monitors/").content.decode()
    assert "harassment-daily" in html and "SIMULATED" in html
    # the latest estimate is the last done cycle's ppi++ insult with its CI; the latest cycle waits, with why
    assert "insult · ppi++ · 11-12" in html
    assert "LLM endpoint sim unreachable" in html or "31 of 40 audit labels in" in html
    assert re.search(r'class="badge failed" href="/monitors/harassment-daily/#alerts">1<', html)
    assert html.count("<svg") == 1  # the sparkline


def test_monitor_page_draws_every_series(client, world, ops):
    client.force_login(ops)
    response = client.get("/monitors/harassment-daily/")
    html = response.content.decode()
    assert response.status_code == 200
    for legend in ("ppi++ (LLM + people)", "human-only (same people&#x27;s labels)", "hajek",
                   "reference: the demo&#x27;s known prevalence", "v2 ppi++ (prompt-change overlap)",
                   "LLM vs people (audited items)", "LLM vs gold (harassment-gold@1)"):
        assert legend in html or legend.replace("&#x27;", "'") in html, legend
    assert 'stroke-dasharray="6 4"' in html  # the reference is dashed
    assert "alert-mark" in html and f'href="#alert-{world.alert.pk}"' in html
    assert "the prompt&#x27;s level shift" in html or "the prompt's level shift" in html
    assert html.count('overlap-note"') == 2  # insult and any violation
    assert "31 / 40" in html and "LLM endpoint sim unreachable" in html  # the cycles table says why it waits
    assert 'name="reason"' in html and "SIMULATED VOTERS" in html


def test_monitor_page_queries_are_bounded(client, world, ops, django_assert_max_num_queries):
    client.force_login(ops)
    with django_assert_max_num_queries(25):
        assert client.get("/monitors/harassment-daily/").status_code == 200


def test_acknowledge_from_the_page(client, world, ops, viewer):
    url = f"/monitors/harassment-daily/alerts/{world.alert.pk}/acknowledge/"
    client.force_login(ops)
    response = client.post(url, {"reason": ""}, follow=True)
    assert "reason: say why" in response.content.decode()
    assert Alert.objects.get(pk=world.alert.pk).acknowledged_at is None
    response = client.post(url, {"reason": "a real rise; escalated"}, follow=True)
    assert "acknowledged" in response.content.decode()
    alert = Alert.objects.get(pk=world.alert.pk)
    assert alert.acknowledged_by == ops and alert.acknowledge_reason == "a real rise; escalated"
    assert AuditEvent.objects.filter(event_type="alert.acknowledged", actor=ops).count() == 1
    assert 'name="reason"' not in client.get("/monitors/harassment-daily/").content.decode()
    client.force_login(viewer)  # the pipeline role reads, cannot acknowledge
    assert client.post(url, {"reason": "x"}).status_code == 403
    assert client.post("/monitors/other/alerts/1/acknowledge/", {"reason": "x"}).status_code == 403


def test_acknowledge_of_another_monitors_alert_is_refused(client, world, ops):
    client.force_login(ops)
    response = client.post(f"/monitors/nope/alerts/{world.alert.pk}/acknowledge/", {"reason": "x"}, follow=True)
    assert "has no alert" in response.content.decode()
    assert Alert.objects.get(pk=world.alert.pk).acknowledged_at is None


def test_unknown_monitor_is_404(client, ops, db):
    client.force_login(ops)
    assert client.get("/monitors/nope/").status_code == 404


def test_measurement_overview_and_home(client, world, ops):
    client.force_login(ops)
    html = client.get("/measurement/").content.decode()
    assert "harassment" in html and "monitor harassment-daily" in html and "sparkline" in html
    assert "no evaluation of a signal on the published version" in html
    home = client.get("/").content.decode()
    assert 'id="measurement-link"' in home and 'href="/measurement/"' in home
    assert 'id="alerts"' in home and world.alert.message in home


def test_empty_monitor_page(client, published, ops):
    from tests.monitoring.factories import monitor_make

    monitor_make(policy=published.policy, user=ops, name="empty")
    client.force_login(ops)
    html = client.get("/monitors/empty/").content.decode()
    assert "No cycle has estimated yet" in html and "No alert has fired" in html
    assert "empty" in client.get("/monitors/").content.decode()


def test_chart_geometry():
    """The band is the interval: its polygon's y values are those of the high then the low points."""
    line = charts.Line("x", "#000", [(DAYS[0], 0.1, 0.05, 0.15), (DAYS[1], 0.2, 0.1, 0.3)])
    svg = charts.series_chart([line], days=DAYS[:2], axis=charts.Axis(high=0.4), width=400, height=200)
    points = re.search(r'<polygon class="band" points="([^"]+)"', svg).group(1).split()
    ys = [float(p.split(",")[1]) for p in points]
    top, bottom = 14 + 18, 14 + 18 + 200 - 40  # the frame: legend row above, axis below
    assert ys == pytest.approx([bottom - (bottom - top) * v / 0.4 for v in (0.15, 0.3, 0.1, 0.05)], abs=0.06)
    assert charts.sparkline([]) == "" and charts.series_chart([], days=[]) == ""
    # a gap in the partitions breaks the line into two
    gap = charts.Line("g", "#000", [(DAYS[0], 0.1, None, None), (DAYS[1], 0.1, None, None),
                                    (DAYS[3], 0.1, None, None), (DAYS[4], 0.1, None, None)], band=False)
    assert charts.series_chart([gap], days=DAYS[:5]).count("<polyline") == 2
