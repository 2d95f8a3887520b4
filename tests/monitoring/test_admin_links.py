"""The admin's monitor and alert pages link to the monitor page (where alerts are acknowledged);
reference series are listed read-only."""

from __future__ import annotations

import datetime

import pytest

from monitoring.services.references import monitor_reference_set
from tests.monitoring.factories import alert_make, cycle_make, monitor_make

pytestmark = pytest.mark.django_db


def test_view_on_site_and_references(admin_client, published, ops):
    monitor = monitor_make(policy=published.policy, user=ops)
    alert = alert_make(cycle_make(monitor, monitor.start_date))
    monitor_reference_set(monitor=monitor, label="insult", points={datetime.date(2026, 11, 1): 0.1}, source="truth",
                          acting_user=ops)
    page = admin_client.get(f"/admin/monitoring/monitor/{monitor.pk}/change/").content.decode()
    assert "/monitors/harassment-daily/" in page or "/admin/r/" in page
    shortcut = admin_client.get(f"/admin/monitoring/alert/{alert.pk}/change/").content.decode()
    assert "View on site" in shortcut
    listed = admin_client.get("/admin/monitoring/monitorreference/")
    assert listed.status_code == 200 and b"truth" in listed.content
    assert admin_client.get("/admin/monitoring/monitorreference/add/").status_code == 403
