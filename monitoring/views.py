"""Monitor pages (staff with ``monitoring.view_monitor``): every monitor with its latest estimate
and why its latest cycle waits; one monitor's series per label (the headline PPI line and the
human-only line with their bands, other estimators, the prompt-change overlap's second version,
the reference series dashed), the LLM-vs-people and LLM-vs-gold agreement series, cost per
cycle, its cycles and alerts (acknowledge with a reason); and the measurement overview."""

from __future__ import annotations

from collections import defaultdict

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from monitoring import charts
from monitoring.charts import Axis, Line, Mark
from monitoring.selectors import alert_list, cycle_list, monitor_get
from monitoring.series import (
    OPEN_ALERT,
    delivery_text,
    focus_label,
    headline_estimator,
    measurement_overview,
    monitor_labels,
    monitor_summaries,
    monitor_summary,
    ppi_estimator,
    references,
    series_rows,
)
from monitoring.services.delivery import alert_acknowledge, alert_get
from touchstone.errors import ApplicationError, NotFound
from touchstone.roles import page_permission_required

DESIGN_COLOURS = ("#264b5d", "#0f766e", "#4d7c0f")


def _pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{100 * value:.{digits}f} %"


def _ci(low: float | None, high: float | None) -> str:
    return "" if low is None or high is None else f"[{_pct(low)}, {_pct(high)}]"


NARROW = 420  # the chart drawn again for phones (shown below 640 px), so its text stays readable


def _two_widths(draw, **kwargs) -> dict:
    """The same chart at the page's width and at a phone's (the template shows one by CSS)."""
    wide = draw(**kwargs)
    return {"wide": mark_safe(wide), "narrow": mark_safe(draw(**{**kwargs, "width": NARROW})),  # our SVG
            "empty": not wide}


def _label_chart(monitor, label: str, rows: list[dict], refs: dict, alerts: list,
                 all_days: list) -> tuple[dict, list[str]]:
    """The label's chart and the notes under it."""
    ppi, headline = ppi_estimator(monitor), headline_estimator(monitor)
    primary = [r for r in rows if r["primary"]]
    lines, notes = [], []
    main = ppi or headline
    main_rows = [r for r in primary if r["estimator"] == main]
    lines.append(Line(f"{main}{' (LLM + people)' if ppi else ''}", charts.PPI if ppi else charts.DESIGN,
                      [(r["date"], r["estimate"], r["ci_low"], r["ci_high"]) for r in main_rows], width=2.5))
    if ppi:
        lines.append(Line("human-only (same people's labels)", charts.HUMAN,
                          [(r["date"], r["human_only_estimate"], r["human_only_ci_low"], r["human_only_ci_high"])
                           for r in main_rows if r["human_only_estimate"] is not None]))
    others = [e for e in monitor.spec.get("estimates", {}).get("estimators", []) if e != main]
    for colour, estimator in zip(DESIGN_COLOURS, others, strict=False):
        lines.append(Line(estimator, colour, [(r["date"], r["estimate"], None, None) for r in primary
                                              if r["estimator"] == estimator], band=False, width=1.5))
    overlap = defaultdict(list)
    for r in rows:
        if not r["primary"] and r["estimator"] == main:
            overlap[r["policy_version"]].append(r)
    for version, vrows in sorted(overlap.items()):
        lines.append(Line(f"v{version} {main} (prompt-change overlap)", charts.OTHER_VERSION,
                          [(r["date"], r["estimate"], r["ci_low"], r["ci_high"]) for r in vrows]))
        primary_versions = sorted({r["policy_version"] for r in primary if r["date"] in {v["date"] for v in vrows}})
        notes.append(f"Partitions {vrows[0]['date']:%m-%d} to {vrows[-1]['date']:%m-%d} were labelled with both "
                     f"v{version} and v{', v'.join(map(str, primary_versions))} on the same sample: the gap between "
                     "the lines there is the prompt's level shift, not a change in the world.")
    ref = refs.get(label)
    if ref:
        lines.append(Line(f"reference: {ref['source']}", charts.REFERENCE,
                          [(d, v, None, None) for d, v in sorted(ref["points"].items())], dashed=True, band=False,
                          markers=False, width=1.8))
    by_day = {r["date"]: r["estimate"] for r in main_rows}
    marks = [Mark(a.cycle.partition_date, a.value if 0 <= a.value <= 1 else by_day.get(a.cycle.partition_date, 0),
                  f"alert {a.rule}: {a.message}", f"alert-{a.pk}")
             for a in alerts if a.label == label and a.cycle.partition_date in by_day]
    days = list(all_days) + (list(ref["points"]) if ref else [])
    svg = _two_widths(charts.series_chart, lines=lines, days=days, marks=marks, axis=Axis(label="prevalence"),
                      label=f"prevalence of {label} per partition")
    return svg, notes


def _agreement_chart(cycles) -> dict | None:
    audit, gold = [], []
    gold_name = ""
    for cycle in cycles:
        for cr in cycle.cycle_runs.all():
            if not cr.is_primary:
                continue
            a = (cr.agreement or {}).get("audit") or {}
            if a.get("agreement") is not None:
                ci = a.get("ci") or [None, None]
                audit.append((cycle.partition_date, a["agreement"], ci[0], ci[1]))
            g = (cr.agreement or {}).get("golden_set") or {}
            if g.get("agreement") is not None:
                ci = g.get("ci") or [None, None]
                gold.append((cycle.partition_date, g["agreement"], ci[0], ci[1]))
                gold_name = g.get("golden_set_version", "")
    lines = []
    if audit:
        lines.append(Line("LLM vs people (audited items)", charts.DESIGN, audit))
    if gold:
        lines.append(Line(f"LLM vs gold ({gold_name})", charts.PPI, gold))
    if not lines:
        return None
    low = min(p[2] if p[2] is not None else p[1] for line in lines for p in line.points)
    return _two_widths(charts.series_chart, lines=lines, days=[c.partition_date for c in cycles],
                       axis=Axis(low=max(0.0, int(low * 10) / 10 - 0.1) if low > 0.2 else 0.0, high=1.0,
                                 label="agreement"),
                       height=220, label="LLM agreement with people and with gold per partition")


@page_permission_required("monitoring.view_monitor", to="view monitors")
def monitors_page(request: HttpRequest) -> HttpResponse:
    summaries = monitor_summaries()
    for s in summaries:
        s.estimate_text = _pct(s.latest["estimate"]) if s.latest else "—"
        s.ci_text = _ci(s.latest["ci_low"], s.latest["ci_high"]) if s.latest else ""
        s.spark = mark_safe(charts.sparkline(s.trend))  # our SVG
    return render(request, "monitoring/monitors.html", {"summaries": summaries})


@page_permission_required("monitoring.view_monitor", to="view monitors")
def monitor_page(request: HttpRequest, name: str) -> HttpResponse:
    monitor = monitor_get(name=name)
    cycles = list(cycle_list(monitor=monitor))
    rows = series_rows(monitor=monitor, cycles=cycles)
    refs = references(monitor=monitor)
    alerts = list(alert_list(monitor=monitor).select_related("cycle").order_by("-created_at"))
    for a in alerts:
        a.delivery = delivery_text(a)
    summary = monitor_summary(monitor, cycles=cycles, open_alerts=sum(1 for a in alerts if a.acknowledged_at is None))
    by_label = defaultdict(list)
    for r in rows:
        by_label[r["label"]].append(r)
    labels = monitor_labels(monitor, set(by_label) | set(refs)) if rows or refs else []
    sections = []
    for label in labels:
        svg, notes = _label_chart(monitor, label, by_label.get(label, []), refs, alerts,
                                  [c.partition_date for c in cycles])
        latest = [r for r in by_label.get(label, []) if r["primary"] and r["estimator"] == summary.estimator]
        last = latest[-1] if latest else None
        sections.append({"label": label, "svg": svg, "notes": notes,
                         "latest": last,
                         "latest_text": f"{_pct(last['estimate'])} {_ci(last['ci_low'], last['ci_high'])}" if last
                         else "—"})
    for cycle in cycles:
        cycle.runs_shown = list(cycle.cycle_runs.all())
        cycle.simulated = any(e.simulated for cr in cycle.runs_shown for e in cr.estimates.all())
    costs = [(c.partition_date, float(c.cost)) for c in cycles if c.cost]
    return render(request, "monitoring/monitor_detail.html", {
        "monitor": monitor, "summary": summary, "sections": sections, "cycles": list(reversed(cycles)),
        "alerts": alerts, "spec": monitor.spec, "focus": focus_label(monitor),
        "agreement_svg": _agreement_chart(cycles),
        "cost_svg": _two_widths(charts.bar_chart, bars=costs) if costs else None,
        "total_cost": sum(v for _, v in costs),
        "estimate_text": _pct(summary.latest["estimate"]) if summary.latest else "—",
        "ci_text": _ci(summary.latest["ci_low"], summary.latest["ci_high"]) if summary.latest else "",
    })


@require_POST
@page_permission_required("monitoring.change_alert", to="acknowledge alerts")
def alert_acknowledge_view(request: HttpRequest, name: str, alert_id: int) -> HttpResponse:
    try:
        alert = alert_get(alert_id=alert_id)
        if alert.monitor.name != name:
            raise NotFound(f"monitor {name!r} has no alert {alert_id}")
        alert_acknowledge(alert=alert, reason=request.POST.get("reason", ""), acting_user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Alert {alert_id} acknowledged.")
    return redirect(reverse("monitor-detail", args=[name]) + f"#alert-{alert_id}")


@page_permission_required("monitoring.view_monitor", to="view the measurement overview")
def measurement_page(request: HttpRequest) -> HttpResponse:
    policies = measurement_overview()
    for m in policies:
        m.estimate_text, m.ci_text = _pct(m.estimate), _ci(m.ci_low, m.ci_high)
        m.spark = mark_safe(charts.sparkline(m.trend))  # our SVG
        h = m.evaluation_headline or {}
        m.evaluation_text = ("—" if h.get("value") is None else f"{h['value']:.3f}"
                             + (f" [{h['ci_low']:.3f}, {h['ci_high']:.3f}]" if h.get("ci_low") is not None else ""))
    open_alerts = alert_list().filter(OPEN_ALERT).count()
    return render(request, "monitoring/measurement.html", {"policies": policies, "open_alerts": open_alerts})
