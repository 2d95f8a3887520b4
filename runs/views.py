"""The run page: progress that refreshes while the run goes on, cost, failures, routing."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from runs.selectors import labeling_run_failures, labeling_run_get, labeling_run_progress
from runs.services.runs import labeling_run_retry_failed
from touchstone.errors import ApplicationError
from touchstone.roles import page_permission_required


@page_permission_required("runs.view_labelingrun", to="view labeling runs")
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = labeling_run_get(name_or_id=str(run_id))
    return render(request, "runs/run_detail.html", {
        "run": run, "progress": labeling_run_progress(run=run), "failures": labeling_run_failures(run=run),
        "voters": run.voters.select_related("endpoint"), "batches": run.batches.order_by("created_at")[:50]})


@page_permission_required("runs.view_labelingrun", to="view labeling runs")
def run_progress(request: HttpRequest, run_id: int) -> JsonResponse:
    run = labeling_run_get(name_or_id=str(run_id))
    return JsonResponse(labeling_run_progress(run=run).as_dict())


@page_permission_required("runs.change_labelingrun", to="retry a run's failed items")
@require_POST
def run_retry_failed(request: HttpRequest, run_id: int) -> HttpResponse:
    run = labeling_run_get(name_or_id=str(run_id))
    try:
        count = labeling_run_retry_failed(run=run, acting_user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Retrying {count} items.")
    return redirect("run-detail", run_id=run.pk)
