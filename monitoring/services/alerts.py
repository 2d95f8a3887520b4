"""Evaluate a finished cycle's alert rules into Alert rows: at most one per (cycle, rule), by the
unique constraint, so a re-run or a redelivered advance never raises an alert twice."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from monitoring.models import Alert, Cycle, CycleRun, CycleState
from monitoring.rules import CycleFacts, Point, evaluate
from review.selectors import vendor_quality
from touchstone.audit import audit_event_record

MAX_WINDOW = 52


def _points(cycle_run: CycleRun | None) -> dict[tuple[str, str], Point]:
    if cycle_run is None:
        return {}
    return {(e.label, e.estimator): Point(e.estimate, e.ci_low, e.ci_high) for e in cycle_run.estimates.all()}


def cycle_facts(*, cycle: Cycle) -> CycleFacts:
    """What the rules read: the primary run's estimates, the previous finished cycles' (newest
    first), the audit agreement and, when a rule needs it, the vendors' gold accuracy."""
    primary = cycle.cycle_runs.filter(is_primary=True).prefetch_related("estimates").first()
    previous_runs = (CycleRun.objects.filter(cycle__monitor=cycle.monitor, cycle__state=CycleState.DONE,
                                             cycle__partition_date__lt=cycle.partition_date, is_primary=True)
                     .order_by("-cycle__partition_date").prefetch_related("estimates")[:MAX_WINDOW])
    audit = ((primary.agreement or {}).get("audit") or {}) if primary else {}
    facts = CycleFacts(points=_points(primary), previous=[_points(cr) for cr in previous_runs],
                       agreement=audit.get("agreement"), agreement_n=audit.get("n") or 0)
    if any(rule["kind"] == "vendor_gold_accuracy_below" for rule in cycle.monitor.alert_rules):
        facts.vendor_accuracy = {row["vendor"]: row["accuracy"]
                                 for row in vendor_quality(queue_id=cycle.monitor.review_queue_id)}
    return facts


def cycle_alerts_evaluate(*, cycle: Cycle) -> list[Alert]:
    """Runs inside a transaction: an Alert for each rule that fires on ``cycle`` and has none yet."""
    monitor = cycle.monitor
    facts = cycle_facts(cycle=cycle)
    default_estimator = monitor.spec["estimates"]["estimators"][0]
    made = []
    for rule in monitor.alert_rules:
        firing = evaluate(rule, facts, default_estimator=default_estimator)
        if firing is None or Alert.objects.filter(cycle=cycle, rule=rule["name"]).exists():
            continue
        try:
            with transaction.atomic():
                alert = Alert.objects.create(
                    monitor=monitor, cycle=cycle, rule=rule["name"], kind=firing.kind, label=firing.label,
                    value=firing.value, threshold=firing.threshold, message=firing.message[:500],
                    details={"rule": rule, "partition": cycle.partition_date.isoformat()})
        except IntegrityError:  # the same alert, made concurrently
            continue
        audit_event_record(actor=None, event_type="alert.raised", obj=alert,
                           details={"rule": rule["name"], "value": firing.value, "threshold": firing.threshold})
        made.append(alert)
    return made
