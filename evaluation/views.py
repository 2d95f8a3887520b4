"""The evaluation page (staff with ``evaluation.view_evaluation``): headline metrics with CIs,
confusion matrix, PR and ROC curves with the chosen threshold, reliability diagram, slices and
errors by rule with examples. Charts are SVG drawn here (evaluation.charts), no CDN."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe

from evaluation import charts
from evaluation.metrics import estimate_text, headline
from evaluation.selectors import evaluation_get, signal_version_simulated_voters
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
