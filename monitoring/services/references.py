"""Reference series: set (idempotent upsert) a known series drawn beside a monitor's estimates."""

from __future__ import annotations

import datetime
import math

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from monitoring.models import Monitor
from monitoring.references import MonitorReference
from touchstone.audit import audit_event_record
from touchstone.errors import ApplicationError
from touchstone.roles import permission_require


class ReferenceInvalid(ApplicationError):
    code = "invalid_reference"
    status = 400


@transaction.atomic
def monitor_reference_set(*, monitor: Monitor, label: str, points: dict[datetime.date, float], source: str,
                          acting_user: AbstractBaseUser) -> list[MonitorReference]:
    """Create or update the reference value of ``label`` on each date of ``points``; setting the
    same points again changes nothing (and records no event)."""
    permission_require(acting_user, "monitoring.change_monitor", to="set a monitor's reference series")
    if not label:
        raise ReferenceInvalid("label: must not be empty", extra={"field": "label"})
    source = (source or "").strip()
    if not source:
        raise ReferenceInvalid("source: say where the series comes from", extra={"field": "source"})
    if len(source) > 200:
        raise ReferenceInvalid("source: at most 200 characters", extra={"field": "source"})
    for day, value in points.items():
        if not isinstance(day, datetime.date):
            raise ReferenceInvalid(f"points: {day!r} is not a date", extra={"field": "points"})
        if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value) or not 0 <= value <= 1:
            raise ReferenceInvalid(f"points[{day.isoformat()}]: {value!r} is not a share in [0, 1]",
                                   extra={"field": f"points[{day.isoformat()}]"})
    existing = {r.partition_date: r for r in MonitorReference.objects.select_for_update()
                .filter(monitor=monitor, label=label, partition_date__in=list(points))}
    changed, rows = [], []
    for day, value in sorted(points.items()):
        row = existing.get(day)
        if row is None:
            row = MonitorReference.objects.create(monitor=monitor, label=label, partition_date=day,
                                                  value=float(value), source=source)
            changed.append(day)
        elif row.value != float(value) or row.source != source:
            row.value, row.source = float(value), source
            row.save(update_fields=["value", "source", "updated_at"])
            changed.append(day)
        rows.append(row)
    if changed:
        audit_event_record(actor=acting_user, event_type="monitor.reference_set", obj=monitor,
                           details={"label": label, "source": source, "dates": len(changed),
                                    "from": changed[0].isoformat(), "to": changed[-1].isoformat()})
    return rows
