"""The prevalence pages (staff with ``prevalence.view_prevalenceestimate``): per policy, each
label's latest estimates with their intervals, the human-only interval beside every PPI one (a
forest plot), the estimate by stratum and how the sample was drawn; and one estimate's page."""

from __future__ import annotations

from collections import defaultdict

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe

from prevalence.charts import ForestRow, forest_chart
from prevalence.documents import percent
from prevalence.estimators import ESTIMATORS
from prevalence.models import ANY_VIOLATION, PrevalenceEstimate
from prevalence.selectors import policy_prevalence, prevalence_estimate_get, run_simulated_voters
from touchstone.roles import page_permission_required

HUMAN_ONLY = "human-only"


def _interval_text(low: float | None, high: float | None) -> str:
    return "—" if low is None else f"[{percent(low)}, {percent(high)}]"


def _display(e: PrevalenceEstimate) -> dict:
    """Percent strings of an estimate for the tables."""
    wilson = e.ci_wilson_low is not None
    audit = e.agreement.get("audit") or {}
    return {
        "estimate": percent(e.estimate), "level": f"{1 - e.alpha:.0%}",
        "interval": (_interval_text(e.ci_wilson_low, e.ci_wilson_high) + " Wilson" if wilson
                     else _interval_text(e.ci_low, e.ci_high) + " Wald"),
        "classical": None if e.classical_estimate is None else
        f"{percent(e.classical_estimate)} {_interval_text(e.classical_ci_low, e.classical_ci_high)}",
        "agreement": f"{percent(audit['agreement'], 1)} of {audit['n']}" if audit.get("n") else "no audit",
        "agreement_share": percent(audit["agreement"], 1) if audit.get("n") else "no audit",
        "classical_estimate": percent(e.classical_estimate),
        "classical_interval": _interval_text(e.classical_ci_low, e.classical_ci_high),
    }


# The estimate a label's row of the forest plot shows: the most model-assisted one computed.
HEADLINE = ("stratified-ppi", "ppi++", "ppi", "stratified", "hajek", "ht")


def _forest_rows(estimates: list[PrevalenceEstimate], *, with_label: bool) -> list[ForestRow]:
    """One row per estimate, and under each PPI estimate its human-only interval on the same labels."""
    rows = []
    for e in estimates:
        name = e.label if with_label else e.estimator
        ppi = e.classical_estimate is not None
        low, high = (e.ci_low, e.ci_high) if ppi or e.ci_wilson_low is None else (e.ci_wilson_low, e.ci_wilson_high)
        rows.append(ForestRow(name, e.estimate, low, high, "ppi" if ppi else "design", heading=True))
        if ppi:
            rows.append(ForestRow(HUMAN_ONLY, e.classical_estimate, e.classical_ci_low, e.classical_ci_high, "human"))
    return rows


def _headlines(estimates: list[PrevalenceEstimate], violating: set[str]) -> list[PrevalenceEstimate]:
    """Per violating label (and any violation), its headline estimate (``HEADLINE`` order)."""
    best: dict[str, PrevalenceEstimate] = {}
    for e in estimates:
        if e.label not in violating:
            continue
        current = best.get(e.label)
        if current is None or HEADLINE.index(e.estimator) < HEADLINE.index(current.estimator):
            best[e.label] = e
    return list(best.values())


def _ordered(estimates: list[PrevalenceEstimate], labels: list[str]) -> list[PrevalenceEstimate]:
    rank = {label: i for i, label in enumerate(labels)}
    return sorted(estimates, key=lambda e: (rank.get(e.label, len(rank)), ESTIMATORS.index(e.estimator)))


def _by_stratum(estimates: list[PrevalenceEstimate]) -> tuple[list[str], list[tuple[str, str, list]]]:
    """Per label, the strata of its most detailed estimate (stratified-ppi, else stratified, else hajek)."""
    best: dict[str, PrevalenceEstimate] = {}
    preference = ("stratified-ppi", "stratified", "ppi++", "ppi", "hajek", "ht")
    for e in estimates:
        current = best.get(e.label)
        if current is None or preference.index(e.estimator) < preference.index(current.estimator):
            best[e.label] = e
    strata = sorted({row["stratum"] for e in best.values() for row in e.strata})
    table = []
    for label, e in best.items():
        cells = {row["stratum"]: row for row in e.strata}
        table.append((label, e.estimator, [None if s not in cells else {**cells[s], "display": percent(
            cells[s]["estimate"])} for s in strata]))
    return strata, table


@page_permission_required("prevalence.view_prevalenceestimate", to="view prevalence estimates")
def policy_prevalence_page(request: HttpRequest, policy_slug: str) -> HttpResponse:
    found = policy_prevalence(policy_slug=policy_slug)
    context: dict = {"policy_slug": policy_slug, "policy_version": found.policy_version}
    if found.estimates:
        taxonomy = list(found.policy_version.labels.all())
        labels = [label.key for label in taxonomy] + [ANY_VIOLATION]
        violating = {label.key for label in taxonomy if label.is_violation} | {ANY_VIOLATION}
        estimates = _ordered(found.estimates, labels)
        for e in estimates:
            e.display = _display(e)
        newest = max(found.estimates, key=lambda e: (e.created_at, e.pk))
        grouped: dict[str, list[PrevalenceEstimate]] = defaultdict(list)
        for e in estimates:
            grouped[e.label].append(e)
        strata, stratum_table = _by_stratum(estimates)
        context.update({
            "newest": newest, "design": newest.design, "labels": list(grouped.items()),
            "design_audit_share": percent(newest.design["audit_share"], 1),
            "simulated_voters": run_simulated_voters(run=newest.run) if newest.simulated else [],
            "strata": strata, "stratum_table": stratum_table,
            "headlines": _headlines(estimates, violating),
            "forest_svg": mark_safe(forest_chart(_forest_rows(_headlines(estimates, violating), with_label=True),
                                                 width=460, label_width=140)),  # our SVG, labels escaped
        })
    return render(request, "prevalence/policy.html", context)


@page_permission_required("prevalence.view_prevalenceestimate", to="view prevalence estimates")
def estimate_detail(request: HttpRequest, estimate_id: int) -> HttpResponse:
    estimate = prevalence_estimate_get(estimate_id=estimate_id)
    estimate.display = _display(estimate)
    strata = [{**row, "display": percent(row["estimate"]),
               "se_display": "—" if row.get("se") is None else percent(row["se"], 3)} for row in estimate.strata]
    return render(request, "prevalence/estimate_detail.html", {
        "e": estimate, "design": estimate.design, "strata": strata,
        "design_audit_share": percent(estimate.design["audit_share"], 1),
        "simulated_voters": run_simulated_voters(run=estimate.run) if estimate.simulated else [],
        "forest_svg": mark_safe(forest_chart(_forest_rows([estimate], with_label=False), width=460,
                                             label_width=140)),  # our SVG, labels escaped
    })
