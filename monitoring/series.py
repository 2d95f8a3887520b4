"""Reads for the monitor pages and API: a monitor's series (one row per cycle run, label and
estimator, with the reference value of that day), its references, a one-line summary per
monitor, and the measurement overview (every policy's latest prevalence, the evaluation of its
published signal, its vendors' quality). Builds on ``monitoring.selectors.cycle_list``."""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Q

from evaluation.models import Evaluation, SignalOutputType
from monitoring.models import AlertStatus, Cycle, CycleState, Monitor
from monitoring.references import MonitorReference
from monitoring.selectors import cycle_list, monitor_list
from policies.models import Policy, PolicyVersionStatus
from prevalence.models import ANY_VIOLATION, PrevalenceEstimate
from review.models import ReviewQueue

# The estimate a monitor's headline shows: the most model-assisted one it computes.
HEADLINE = ("stratified-ppi", "ppi++", "ppi", "stratified", "hajek", "ht")
PPI = ("stratified-ppi", "ppi++", "ppi")
SERIES_FIELDS = ("date", "cycle", "label", "estimator", "estimate", "se", "ci_low", "ci_high", "n_human", "n_llm",
                 "n_pending", "policy_version", "primary", "human_only_estimate", "human_only_ci_low",
                 "human_only_ci_high", "simulated", "reference", "reference_source")
OPEN_ALERT = Q(acknowledged_at__isnull=True)


def headline_estimator(monitor: Monitor) -> str:
    estimators = monitor.spec.get("estimates", {}).get("estimators") or ["hajek"]
    return min(estimators, key=lambda e: HEADLINE.index(e) if e in HEADLINE else len(HEADLINE))


def ppi_estimator(monitor: Monitor) -> str | None:
    estimators = monitor.spec.get("estimates", {}).get("estimators") or []
    return next((e for e in PPI if e in estimators), None)


def focus_label(monitor: Monitor) -> str:
    labels = monitor.spec.get("estimates", {}).get("labels") or []
    return labels[0] if labels else ANY_VIOLATION


def monitor_labels(monitor: Monitor, present: set[str]) -> list[str]:
    """The labels shown: the monitor's own list, else every estimated label (any violation first)."""
    wanted = monitor.spec.get("estimates", {}).get("labels") or []
    if wanted:
        return [label for label in wanted if label in present] or list(wanted)
    return sorted(present, key=lambda label: (label != ANY_VIOLATION, label))


def references(*, monitor: Monitor) -> dict[str, dict]:
    """Per label: ``{"source": str, "points": {date: value}}``."""
    out: dict[str, dict] = {}
    for ref in MonitorReference.objects.filter(monitor=monitor).order_by("label", "partition_date"):
        entry = out.setdefault(ref.label, {"source": ref.source, "points": {}})
        entry["points"][ref.partition_date] = ref.value
    return out


def _row(cycle: Cycle, cr, e: PrevalenceEstimate, refs: dict[str, dict]) -> dict:
    ref = refs.get(e.label, {})
    return {"date": cycle.partition_date, "cycle": cycle.pk, "label": e.label, "estimator": e.estimator,
            "estimate": e.estimate, "se": e.se, "ci_low": e.ci_low, "ci_high": e.ci_high, "n_human": e.n_human,
            "n_llm": e.n_llm, "n_pending": e.n_pending, "policy_version": cr.policy_version.number,
            "primary": cr.is_primary, "human_only_estimate": e.classical_estimate,
            "human_only_ci_low": e.classical_ci_low, "human_only_ci_high": e.classical_ci_high,
            "simulated": e.simulated, "reference": ref.get("points", {}).get(cycle.partition_date),
            "reference_source": ref.get("source") if cycle.partition_date in ref.get("points", {}) else None}


def series_rows(*, monitor: Monitor, cycles: list[Cycle] | None = None, label: str | None = None,
                estimator: str | None = None) -> list[dict]:
    """One row per (cycle run, label, estimator) in partition order; ``reference`` is the known
    value of that label on that day (or None)."""
    refs = references(monitor=monitor)
    rows = []
    for cycle in cycles if cycles is not None else cycle_list(monitor=monitor):
        for cr in cycle.cycle_runs.all():
            for e in sorted(cr.estimates.all(), key=lambda e: (e.label, e.estimator)):
                if (label is None or e.label == label) and (estimator is None or e.estimator == estimator):
                    rows.append(_row(cycle, cr, e, refs))
    return rows


def reference_only_rows(*, monitor: Monitor, label: str | None, have: set[tuple[datetime.date, str]]) -> list[dict]:
    """Days with a reference but no estimate (so the CSV carries the whole known series)."""
    rows = []
    for ref_label, entry in references(monitor=monitor).items():
        if label is not None and ref_label != label:
            continue
        for day, value in entry["points"].items():
            if (day, ref_label) not in have:
                rows.append({**dict.fromkeys(SERIES_FIELDS), "date": day, "label": ref_label, "reference": value,
                             "reference_source": entry["source"], "primary": None, "simulated": None})
    return rows


def waiting_reason(cycle: Cycle | None) -> str:
    if cycle is None:
        return "no cycle yet"
    if cycle.state in (CycleState.WAITING, CycleState.FAILED):
        return cycle.reason or cycle.get_state_display()
    if cycle.state == CycleState.REVIEWING:
        return f"{cycle.labels_in} of {cycle.audit_items} audit labels in" + (
            f"; deadline {cycle.label_deadline_at:%Y-%m-%d %H:%M} UTC" if cycle.label_deadline_at else "")
    return ""


@dataclass
class MonitorSummary:
    monitor: Monitor
    label: str
    estimator: str
    latest: dict | None  # a series row
    latest_cycle: Cycle | None
    reason: str
    open_alerts: int
    simulated: bool
    trend: list[tuple] = field(default_factory=list)  # (date, estimate, low, high)
    cycles: int = 0


def monitor_summary(monitor: Monitor, *, cycles: list[Cycle] | None = None, open_alerts: int | None = None,
                    trend_points: int = 30) -> MonitorSummary:
    cycles = list(cycles if cycles is not None else cycle_list(monitor=monitor))
    label, estimator = focus_label(monitor), headline_estimator(monitor)
    rows = [r for r in series_rows(monitor=monitor, cycles=cycles, label=label, estimator=estimator) if r["primary"]]
    latest_cycle = max(cycles, key=lambda c: c.partition_date) if cycles else None
    if open_alerts is None:
        open_alerts = monitor.alerts.filter(OPEN_ALERT).count()
    simulated = any(e.simulated for c in cycles for cr in c.cycle_runs.all() for e in cr.estimates.all())
    return MonitorSummary(monitor=monitor, label=label, estimator=estimator, latest=rows[-1] if rows else None,
                          latest_cycle=latest_cycle, reason=waiting_reason(latest_cycle), open_alerts=open_alerts,
                          simulated=simulated, cycles=len(cycles),
                          trend=[(r["date"], r["estimate"], r["ci_low"], r["ci_high"]) for r in rows[-trend_points:]])


def monitor_summaries() -> list[MonitorSummary]:
    open_alerts = Count("alerts", filter=Q(alerts__acknowledged_at__isnull=True))
    monitors = list(monitor_list().annotate(open_alerts=open_alerts))
    return [monitor_summary(m, open_alerts=m.open_alerts) for m in monitors]


def open_alert_list(*, limit: int = 20):
    from monitoring.selectors import alert_list

    return list(alert_list().filter(OPEN_ALERT).select_related("monitor__policy").order_by("-created_at")[:limit])


def delivery_text(alert) -> str:
    if alert.status == AlertStatus.SENT:
        return f"delivered {alert.delivered_at:%Y-%m-%d %H:%M} (attempt {alert.attempts})"
    if alert.status == AlertStatus.FAILED:
        return (f"attempt {alert.attempts} failed: {alert.last_error}; next "
                f"{alert.next_attempt_at:%H:%M:%S}" if alert.next_attempt_at else f"failed: {alert.last_error}")
    if alert.status == AlertStatus.GAVE_UP:
        return f"given up after {alert.attempts} attempts: {alert.last_error}"
    return alert.get_status_display()


# --- the measurement overview -------------------------------------------------------------------

def _estimate_headline(estimates: list[PrevalenceEstimate]) -> PrevalenceEstimate | None:
    if not estimates:
        return None
    return min(estimates, key=lambda e: HEADLINE.index(e.estimator) if e.estimator in HEADLINE else 99)


@dataclass
class PolicyMeasurement:
    policy: Policy
    published: object | None
    monitor: Monitor | None = None
    label: str = ANY_VIOLATION
    estimator: str = ""
    estimate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    as_of: datetime.date | None = None
    trend: list[tuple] = field(default_factory=list)
    simulated: bool = False
    evaluation: Evaluation | None = None
    evaluation_headline: dict | None = None
    signal_version: object | None = None
    vendors: list[dict] = field(default_factory=list)


def _published_evaluation(published) -> Evaluation | None:
    """The latest evaluation of a signal version whose prompt was compiled from the published version."""
    if published is None:
        return None
    return (Evaluation.objects.filter(signal_version__prompt_version__policy_version=published)
            .select_related("signal_version__signal", "golden_set_version__golden_set")
            .order_by("-created_at", "-pk").first())


def measurement_overview() -> list[PolicyMeasurement]:
    from review.selectors import vendor_quality

    monitors_by_policy: dict[int, list[Monitor]] = defaultdict(list)
    for monitor in monitor_list():
        monitors_by_policy[monitor.policy_id].append(monitor)
    accuracy = {row["vendor_id"]: row for row in vendor_quality()}
    vendors_by_policy: dict[int, dict[int, dict]] = defaultdict(dict)
    for queue in ReviewQueue.objects.select_related("vendor", "policy_version"):
        row = accuracy.get(queue.vendor_id, {})
        vendors_by_policy[queue.policy_version.policy_id][queue.vendor_id] = {
            "vendor": queue.vendor, "accuracy": row.get("accuracy"), "gold_items": row.get("gold_items", 0),
            "labels": row.get("labels", 0)}
    out = []
    for policy in Policy.objects.order_by("slug"):
        published = policy.versions.filter(status=PolicyVersionStatus.PUBLISHED).first()
        m = PolicyMeasurement(policy=policy, published=published,
                              vendors=sorted(vendors_by_policy.get(policy.pk, {}).values(),
                                             key=lambda v: v["vendor"].name))
        monitors = monitors_by_policy.get(policy.pk)
        if monitors:
            summary = monitor_summary(monitors[0])
            m.monitor, m.label, m.estimator, m.trend, m.simulated = (monitors[0], summary.label, summary.estimator,
                                                                      summary.trend, summary.simulated)
            if summary.latest:
                m.estimate, m.ci_low, m.ci_high = (summary.latest["estimate"], summary.latest["ci_low"],
                                                   summary.latest["ci_high"])
                m.as_of = summary.latest["date"]
        else:
            by_run: dict[int, list[PrevalenceEstimate]] = defaultdict(list)
            for e in (PrevalenceEstimate.objects.filter(policy_version__policy=policy, label=ANY_VIOLATION)
                      .order_by("created_at", "pk")):
                by_run[e.run_id].append(e)
            headlines = [h for h in (_estimate_headline(v) for v in by_run.values()) if h is not None]
            headlines.sort(key=lambda e: (e.created_at, e.pk))
            if headlines:
                last = headlines[-1]
                m.estimator, m.estimate, m.ci_low, m.ci_high = last.estimator, last.estimate, last.ci_low, last.ci_high
                m.as_of, m.simulated = last.created_at.date(), last.simulated
                m.trend = [(e.created_at.date(), e.estimate, e.ci_low, e.ci_high) for e in headlines[-30:]]
                # Several estimates on one day: keep the last (the sparkline's x is the day).
                m.trend = list({p[0]: p for p in m.trend}.values())
        m.evaluation = _published_evaluation(published)
        if m.evaluation is not None:
            signal = m.evaluation.signal_version.signal
            path = ("binary", "f1") if signal.output_type == SignalOutputType.LABEL else ("scores", "roc_auc")
            m.evaluation_headline = (m.evaluation.document.get(path[0]) or {}).get(path[1])
            m.signal_version = m.evaluation.signal_version
        out.append(m)
    return out
