"""The admin lists monitors, cycles (with their runs) and alerts in a bounded number of queries;
a monitor is paused from the admin; cycles and alerts cannot be added or changed there."""

from __future__ import annotations

import pytest

from monitoring.models import Alert, Cycle
from monitoring.services.monitors import monitor_backfill
from tests.monitoring.conftest import DAYS

pytestmark = pytest.mark.django_db


def test_admin_lists_and_pauses(world, ops, admin_client, django_assert_max_num_queries):
    make, _ = world
    monitor = make()
    made = monitor_backfill(monitor=monitor, date_from=DAYS[0], date_to=DAYS[4], acting_user=ops, enqueue=False)
    Alert.objects.bulk_create(Alert(monitor=monitor, cycle=c, rule="too-high", kind="estimate_above", value=0.3,
                                    threshold=0.25, message="x") for c in made.created)
    for url in ("/admin/monitoring/monitor/", "/admin/monitoring/cycle/", "/admin/monitoring/alert/"):
        with django_assert_max_num_queries(12):
            assert admin_client.get(url).status_code == 200, url
    page = admin_client.get(f"/admin/monitoring/cycle/{made.created[0].pk}/change/")
    assert page.status_code == 200 and b"harassment-daily" in page.content
    assert admin_client.get("/admin/monitoring/cycle/add/").status_code == 403
    assert admin_client.get("/admin/monitoring/monitor/add/").status_code == 403
    response = admin_client.post("/admin/monitoring/monitor/", {"action": "pause", "_selected_action": [monitor.pk]})
    assert response.status_code == 302
    monitor.refresh_from_db()
    assert monitor.is_paused and Cycle.objects.filter(monitor=monitor).count() == 5
