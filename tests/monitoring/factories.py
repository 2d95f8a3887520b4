"""Rows for page, API and delivery tests, made directly (no runs): a monitor, cycles, an alert."""

from __future__ import annotations

import datetime

from monitoring.models import Alert, Cycle, CycleState, Monitor

SPEC = {"estimates": {"estimators": ["hajek", "ppi++"], "labels": ["insult"]}, "alerts": [],
        "sample": {"size": 200}, "audit": {"share": 0.2}}


def monitor_make(*, policy, user, name: str = "harassment-daily", start=datetime.date(2026, 11, 1)) -> Monitor:
    return Monitor.objects.create(name=name, policy=policy, spec=SPEC, start_date=start, created_by=user)


def cycle_make(monitor: Monitor, day: datetime.date, *, state: str = CycleState.DONE, **extra) -> Cycle:
    return Cycle.objects.create(monitor=monitor, partition_date=day, state=state, seed=day.toordinal(), **extra)


def alert_make(cycle: Cycle, *, rule: str = "too-high", value: float = 0.31) -> Alert:
    return Alert.objects.create(monitor=cycle.monitor, cycle=cycle, rule=rule, kind="estimate_above", label="insult",
                                value=value, threshold=0.25, message=f"insult at {value:.0%} is above 25%")
