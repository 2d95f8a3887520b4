"""Reads of monitors, cycles, the series and alerts (for the CLI, and the pages and API to come)."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from monitoring.models import Alert, Cycle, CycleRun, Monitor
from touchstone.errors import NotFound


def monitor_list() -> QuerySet[Monitor]:
    return Monitor.objects.select_related("policy", "review_queue").order_by("name")


def monitor_get(*, name: str) -> Monitor:
    monitor = monitor_list().filter(name=name).first()
    if monitor is None:
        raise NotFound(f"no monitor named {name!r}")
    return monitor


def cycle_list(*, monitor: Monitor) -> QuerySet[Cycle]:
    runs = CycleRun.objects.select_related("policy_version__policy", "run").prefetch_related("estimates")
    return (monitor.cycles.select_related("sample").prefetch_related(Prefetch("cycle_runs", queryset=runs), "alerts")
            .order_by("partition_date"))


def alert_list(*, monitor: Monitor | None = None) -> QuerySet[Alert]:
    alerts = Alert.objects.select_related("monitor", "cycle", "acknowledged_by")
    return alerts.filter(monitor=monitor) if monitor is not None else alerts


def monitor_series(*, monitor: Monitor) -> list[dict]:
    """One point per (cycle, policy version, label, estimator), in partition order: the estimate,
    its CI, the human-only (classical) estimate and CI beside PPI's, whether it is the series'
    primary line or the overlap's second version; plus each cycle's audit agreement and cost."""
    points = []
    for cycle in cycle_list(monitor=monitor):
        for cr in cycle.cycle_runs.all():
            for e in cr.estimates.all():
                points.append({
                    "partition": cycle.partition_date.isoformat(), "cycle": cycle.pk, "state": cycle.state,
                    "policy_version": cr.policy_version.number, "primary": cr.is_primary, "label": e.label,
                    "estimator": e.estimator, "estimate": e.estimate, "ci": [e.ci_low, e.ci_high],
                    "human_only": {"estimate": e.classical_estimate, "ci": [e.classical_ci_low, e.classical_ci_high]},
                    "n_human": e.n_human, "n_pending": e.n_pending, "simulated": e.simulated,
                    "agreement": (cr.agreement or {}).get("audit"), "cost": str(cycle.cost)})
    return points
