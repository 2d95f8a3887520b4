"""The signal page (staff with ``evaluation.view_evaluation``): metadata, versions (with their
links and a SIMULATED badge), the headline metric of each evaluation over time and the
comparisons. The evaluation page (staff with ``evaluation.view_evaluation``): headline metrics with CIs,
confusion matrix, PR and ROC curves with the chosen threshold, reliability diagram, slices and
errors by rule with examples. The comparison page (the same permission): the deltas B − A with
CIs, McNemar, per label and per slice, and the flipped items. Charts are SVG drawn here
(evaluation.charts), no CDN."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe

from evaluation import charts
from evaluation.comparison import delta_cell, delta_rows, delta_text, p_text
from evaluation.metrics import estimate_text, headline
from evaluation.models import SignalOutputType
from evaluation.selectors import (
    comparison_get,
    comparison_list,
    evaluation_get,
    signal_declared_simulated,
    signal_evaluation_history,
    signal_get,
    signal_version_list,
    signal_version_simulated_voters,
    signal_versions_simulated_voters,
)
from goldsets.charts import interval_chart
from touchstone.roles import page_permission_required


def _curves(doc: dict) -> dict[str, str]:
    scores = doc.get("scores")
    if not scores:
        return {}
    curves, chosen = scores["curves"], scores["curves"]["chosen"]
    t = chosen["threshold"]
    label = "flags nothing (+∞)" if t["flags_nothing"] else f"threshold {t['value']:g}"
    out = {}
    if curves.get("pr"):
        out["pr_svg"] = charts.curve_chart(curves["pr"]["recall"], curves["pr"]["precision"], x_label="recall",
                                           y_label="precision", title="Precision–recall",
                                           marker=(chosen["recall"], chosen["precision"]), marker_label=label)
    if curves.get("roc"):
        out["roc_svg"] = charts.curve_chart(curves["roc"]["fpr"], curves["roc"]["tpr"], x_label="false positive rate",
                                            y_label="recall (TPR)", title="ROC", diagonal=True,
                                            marker=(chosen["fpr"], chosen["recall"]), marker_label=label)
    return out


@page_permission_required("evaluation.view_evaluation", to="view evaluations")
def evaluation_detail(request: HttpRequest, evaluation_id: int) -> HttpResponse:
    evaluation = evaluation_get(evaluation_id=evaluation_id)
    doc = evaluation.document
    rows = headline(doc)
    short = {"Cohen's kappa (signal vs gold)": "Cohen's κ"}  # the chart's label column is 170 px
    svgs = {"intervals_svg": interval_chart([(short.get(name, name), e) for name, e in rows
                                             if "threshold" not in name]),
            "confusion_svg": charts.confusion_heatmap(doc["confusion_matrix"]["labels"],
                                                      doc["confusion_matrix"]["counts"]),
            **_curves(doc)}
    if doc.get("calibration"):
        svgs["reliability_svg"] = charts.reliability_chart(doc["calibration"]["reliability"])
    return render(request, "evaluation/evaluation_detail.html", {
        "evaluation": evaluation, "doc": doc, "version": evaluation.signal_version,
        "simulated_voters": signal_version_simulated_voters(evaluation.signal_version),
        "headline": [(name, e, estimate_text(e)) for name, e in rows],
        **{name: mark_safe(svg) for name, svg in svgs.items()}})  # our own SVG, labels escaped


@page_permission_required("evaluation.view_evaluation", to="view comparisons")
def comparison_detail(request: HttpRequest, comparison_id: int) -> HttpResponse:
    comparison = comparison_get(comparison_id=comparison_id)
    doc = comparison.document
    rows = delta_rows(doc)
    a, b = comparison.signal_version_a, comparison.signal_version_b
    return render(request, "evaluation/comparison_detail.html", {
        "comparison": comparison, "doc": doc, "a": a, "b": b,
        "simulated": {"A": signal_version_simulated_voters(a), "B": signal_version_simulated_voters(b)},
        "p_value": p_text(doc["mcnemar"]["p_value"]),
        "deltas": [(name, d, delta_text(d), delta_cell(d)) for name, d in rows],
        "delta_svg": mark_safe(charts.delta_chart([(name.split(": ", 1)[1], d) for name, d in rows])),  # our SVG
        "per_label": [(row, [delta_cell(row[m]) for m in ("precision", "recall", "f1")])
                      for row in doc.get("per_label") or []],
        "slices": [(row, [delta_cell(row[m]) for m in ("precision", "recall", "f1", "recall_at_fpr")],
                    p_text(row["mcnemar"]["p_value"]))
                   for row in doc.get("slices") or []]})


@page_permission_required("evaluation.view_evaluation", to="view signals")
def signal_detail(request: HttpRequest, name: str) -> HttpResponse:
    signal = signal_get(name=name)
    versions = list(signal_version_list(signal=signal))
    voters = signal_versions_simulated_voters(versions=versions)
    evaluations = signal_evaluation_history(signal=signal)
    metric = "F1 (positive class)" if signal.output_type == SignalOutputType.LABEL else "ROC AUC"
    points = [{"id": e.pk, "href": f"/evaluations/{e.pk}/", "x_label": f"v{e.signal_version.number}",
               "date": e.created_at.strftime("%m-%d %H:%M"), "group": str(e.golden_set_version),
               "estimate": e.headline} for e in evaluations]
    return render(request, "evaluation/signal_detail.html", {
        "signal": signal, "metric": metric,
        "simulated": signal_declared_simulated(signal=signal),
        "versions": [(v, voters.get(v.pk, []), signal_declared_simulated(signal=signal, version=v))
                     for v in versions],
        "evaluations": [(e, estimate_text(e.headline)) for e in reversed(evaluations)],
        "history_svg": mark_safe(charts.history_chart(points, metric=metric)) if points else "",  # our SVG
        "comparisons": list(comparison_list(signal_name=signal.name))})
