"""Reference series: idempotent upsert, permission, audit, validation, the unique row."""

from __future__ import annotations

import datetime

import pytest
from django.db import IntegrityError, transaction

from monitoring.models import Monitor, MonitorReference
from monitoring.services.references import ReferenceInvalid, monitor_reference_set
from touchstone.errors import PermissionDenied
from touchstone.models import AuditEvent

D = [datetime.date(2026, 11, 1) + datetime.timedelta(days=i) for i in range(3)]


@pytest.fixture
def monitor(published, ops):
    return Monitor.objects.create(name="ref-mon", policy=published.policy, spec={"alerts": []},
                                  start_date=D[0], created_by=ops)


def test_set_is_an_idempotent_upsert_and_audited(monitor, ops):
    points = {D[0]: 0.1, D[1]: 0.2, D[2]: 0.35}
    rows = monitor_reference_set(monitor=monitor, label="insult", points=points, source="demo truth", acting_user=ops)
    assert [r.value for r in rows] == [0.1, 0.2, 0.35]
    assert AuditEvent.objects.filter(event_type="monitor.reference_set").count() == 1

    monitor_reference_set(monitor=monitor, label="insult", points=points, source="demo truth", acting_user=ops)
    assert MonitorReference.objects.count() == 3
    assert AuditEvent.objects.filter(event_type="monitor.reference_set").count() == 1  # nothing changed

    monitor_reference_set(monitor=monitor, label="insult", points={D[2]: 0.4}, source="demo truth", acting_user=ops)
    assert MonitorReference.objects.get(partition_date=D[2]).value == 0.4
    assert MonitorReference.objects.count() == 3
    event = AuditEvent.objects.filter(event_type="monitor.reference_set").order_by("-pk").first()
    assert event.details["dates"] == 1 and event.details["label"] == "insult"


def test_other_label_is_its_own_series(monitor, ops):
    monitor_reference_set(monitor=monitor, label="insult", points={D[0]: 0.1}, source="s", acting_user=ops)
    monitor_reference_set(monitor=monitor, label="any violation", points={D[0]: 0.3}, source="s", acting_user=ops)
    assert MonitorReference.objects.count() == 2


def test_needs_change_permission(monitor, django_user_model):
    nobody = django_user_model.objects.create_user(username="nobody", password="pw")
    with pytest.raises(PermissionDenied):
        monitor_reference_set(monitor=monitor, label="insult", points={D[0]: 0.1}, source="s", acting_user=nobody)
    assert not MonitorReference.objects.exists()


@pytest.mark.parametrize(("points", "source", "field"), [
    ({D[0]: 1.5}, "s", "points[2026-11-01]"),
    ({D[0]: -0.1}, "s", "points[2026-11-01]"),
    ({D[0]: float("nan")}, "s", "points[2026-11-01]"),
    ({"2026-11-01": 0.1}, "s", "points"),
    ({D[0]: 0.1}, "  ", "source"),
])
def test_bad_input_names_the_field(monitor, ops, points, source, field):
    with pytest.raises(ReferenceInvalid) as info:
        monitor_reference_set(monitor=monitor, label="insult", points=points, source=source, acting_user=ops)
    assert info.value.extra["field"] == field
    assert not MonitorReference.objects.exists()


def test_database_keeps_one_row_per_day_and_values_in_range(monitor):
    MonitorReference.objects.create(monitor=monitor, label="insult", partition_date=D[0], value=0.1, source="s")
    with pytest.raises(IntegrityError), transaction.atomic():
        MonitorReference.objects.create(monitor=monitor, label="insult", partition_date=D[0], value=0.2, source="s")
    with pytest.raises(IntegrityError), transaction.atomic():
        MonitorReference.objects.create(monitor=monitor, label="insult", partition_date=D[1], value=2.0, source="s")
