"""Monitors REST API: thin views over the selectors and services. Reading needs the matching
``monitoring.view_*`` permission (pipelines, labeling ops; a read-scoped token is enough);
acknowledging an alert needs a write-scoped token (or a session) of a user with
``monitoring.change_alert``. Bad query parameters are a 400 naming the field."""

from __future__ import annotations

import csv
import io
from typing import Any

from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from monitoring.api import serializers as out
from monitoring.models import Alert, Cycle, Monitor
from monitoring.selectors import alert_list, cycle_list, monitor_get, monitor_list
from monitoring.series import OPEN_ALERT, SERIES_FIELDS, monitor_summary, reference_only_rows, series_rows
from monitoring.services.delivery import alert_acknowledge, alert_get
from touchstone.api import PermissionApiView, api_responses
from touchstone.errors import NotFound

NAME = OpenApiParameter("name", {"type": "string", "pattern": "^[-a-zA-Z0-9_]+$"}, OpenApiParameter.PATH,
                        description="the monitor's name")


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def monitor_document(monitor: Monitor, *, open_alerts: int | None = None) -> dict[str, Any]:
    s = monitor_summary(monitor, open_alerts=open_alerts)
    cycle = s.latest_cycle
    estimates = monitor.spec.get("estimates", {})
    return {
        "name": monitor.name, "policy": monitor.policy.slug, "cadence": monitor.cadence,
        "start": monitor.start_date.isoformat(), "paused": monitor.is_paused,
        "review_queue": monitor.review_queue.name if monitor.review_queue_id else None,
        "estimators": estimates.get("estimators", []), "labels": estimates.get("labels"),
        "alert_rules": monitor.alert_rules,
        "latest": None if s.latest is None else {
            "estimate": s.latest["estimate"], "ci_low": s.latest["ci_low"], "ci_high": s.latest["ci_high"],
            "label": s.label, "estimator": s.estimator, "date": s.latest["date"].isoformat()},
        "latest_cycle": None if cycle is None else {"id": cycle.pk, "partition": cycle.partition_date.isoformat(),
                                                    "state": cycle.state, "reason": s.reason},
        "open_alerts": s.open_alerts, "simulated": s.simulated,
        "page": reverse("monitor-detail", args=[monitor.name]),
        "series": reverse("api-monitor-series", args=[monitor.name]),
    }


def cycle_document(cycle: Cycle) -> dict[str, Any]:
    return {
        "id": cycle.pk, "monitor": cycle.monitor.name, "partition": cycle.partition_date.isoformat(),
        "state": cycle.state, "stage": cycle.stage, "reason": cycle.reason, "backfill": cycle.is_backfill,
        "sample": cycle.sample.name if cycle.sample_id else None, "audit_items": cycle.audit_items,
        "labels_in": cycle.labels_in, "estimated_with_pending": cycle.estimated_with_pending,
        "cost": str(cycle.cost), "input_tokens": cycle.input_tokens, "output_tokens": cycle.output_tokens,
        "created_at": _iso(cycle.created_at), "drawn_at": _iso(cycle.drawn_at), "labeled_at": _iso(cycle.labeled_at),
        "reviewed_at": _iso(cycle.reviewed_at), "estimated_at": _iso(cycle.estimated_at),
        "finished_at": _iso(cycle.finished_at),
        "runs": [{"policy_version": cr.policy_version.number, "primary": cr.is_primary,
                  "run": cr.run.name if cr.run_id else None, "estimated_at": _iso(cr.estimated_at),
                  "agreement": cr.agreement or None} for cr in cycle.cycle_runs.all()],
    }


def alert_document(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.pk, "monitor": alert.monitor.name, "partition": alert.cycle.partition_date.isoformat(),
        "cycle": alert.cycle_id, "rule": alert.rule, "kind": alert.kind, "label": alert.label, "value": alert.value,
        "threshold": alert.threshold, "message": alert.message, "created_at": _iso(alert.created_at),
        "delivery": {"status": alert.status, "attempts": alert.attempts, "last_error": alert.last_error,
                     "next_attempt_at": _iso(alert.next_attempt_at), "delivered_at": _iso(alert.delivered_at)},
        "acknowledged": None if alert.acknowledged_at is None else {
            "by": alert.acknowledged_by.get_username() if alert.acknowledged_by_id else None,
            "at": _iso(alert.acknowledged_at), "reason": alert.acknowledge_reason},
        "page": reverse("monitor-detail", args=[alert.monitor.name]) + f"#alert-{alert.pk}",
    }


class MonitoringApi(PermissionApiView):
    read_permission = "monitoring.view_monitor"
    read_to = "read monitors"


class MonitorListApi(MonitoringApi):
    @extend_schema(responses=api_responses({200: out.MonitorSerializer(many=True)}),
                   summary="Monitors with their latest estimate", operation_id="monitors_list")
    def get(self, request: Request) -> Response:
        return Response([monitor_document(m) for m in monitor_list()])


class MonitorDetailApi(MonitoringApi):
    @extend_schema(parameters=[NAME], responses=api_responses({200: out.MonitorSerializer}, 404),
                   summary="A monitor", operation_id="monitor_retrieve")
    def get(self, request: Request, name: str) -> Response:
        return Response(monitor_document(monitor_get(name=name)))


class CycleListApi(MonitoringApi):
    read_permission = "monitoring.view_cycle"

    @extend_schema(parameters=[NAME, out.MonitorCycleListQuerySerializer],
                   responses=api_responses({200: out.MonitorCycleSerializer(many=True)}, 400, 404),
                   summary="A monitor's cycles, newest partition first", operation_id="monitor_cycles_list")
    def get(self, request: Request, name: str) -> Response:
        query = out.MonitorCycleListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        cycles = cycle_list(monitor=monitor_get(name=name)).order_by("-partition_date")
        if q.get("state"):
            cycles = cycles.filter(state=q["state"])
        return Response([cycle_document(c) for c in cycles[:q["limit"]]])


class CycleDetailApi(MonitoringApi):
    read_permission = "monitoring.view_cycle"

    @extend_schema(parameters=[NAME, OpenApiParameter("cycle_id", {"type": "integer", "minimum": 1},
                                                      OpenApiParameter.PATH, description="the cycle's id")],
                   responses=api_responses({200: out.MonitorCycleSerializer}, 404),
                   summary="A cycle", operation_id="monitor_cycle_retrieve")
    def get(self, request: Request, name: str, cycle_id: int) -> Response:
        cycle = cycle_list(monitor=monitor_get(name=name)).filter(pk=cycle_id).first()
        if cycle is None:
            raise NotFound(f"monitor {name!r} has no cycle {cycle_id}", extra={"field": "cycle_id"})
        return Response(cycle_document(cycle))


class SeriesApi(MonitoringApi):
    @extend_schema(
        parameters=[NAME, out.MonitorSeriesQuerySerializer],
        responses=api_responses({
            (200, "application/json"): OpenApiResponse(out.MonitorSeriesSerializer,
                                                       description="{monitor, columns, points}"),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="format=csv: a header row of the "
                                                                              "columns, then one row per point")},
            400, 404),
        summary="A monitor's time series (JSON or CSV)", operation_id="monitor_series_retrieve",
        description="One row per cycle run, label and estimator, in partition order: the estimate, its SE and "
                    "CI, people and LLM counts, the policy version (two during a prompt change's overlap; "
                    "`primary` marks the published version's line), the human-only estimate beside PPI's, and "
                    "the reference value of that day when the monitor has one (a day with only a reference is "
                    "a row with nulls elsewhere).")
    def get(self, request: Request, name: str) -> Response | HttpResponse:
        query = out.MonitorSeriesQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        monitor = monitor_get(name=name)
        rows = series_rows(monitor=monitor, label=q.get("label"), estimator=q.get("estimator"))
        if q["primary"] is not None:
            rows = [r for r in rows if r["primary"] == q["primary"]]
        if q["primary"] is not False and not q.get("estimator"):
            rows += reference_only_rows(monitor=monitor, label=q.get("label"),
                                        have={(r["date"], r["label"]) for r in rows})
            rows.sort(key=lambda r: (r["date"], r["label"], r["estimator"] or "", not r["primary"]))
        if q["format"] == "csv":
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=SERIES_FIELDS, lineterminator="\n")
            writer.writeheader()
            for r in rows:
                writer.writerow({k: ("" if r[k] is None else r[k].isoformat() if k == "date" else r[k])
                                 for k in SERIES_FIELDS})
            response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="{monitor.name}-series.csv"'
            return response
        return Response({"monitor": monitor.name, "columns": list(SERIES_FIELDS),
                         "points": [{**r, "date": r["date"].isoformat()} for r in rows]})


class AlertListApi(MonitoringApi):
    read_permission = "monitoring.view_alert"

    @extend_schema(parameters=[out.MonitorAlertListQuerySerializer],
                   responses=api_responses({200: out.MonitorAlertSerializer(many=True)}, 400, 404),
                   summary="Alerts, newest first", operation_id="alerts_list")
    def get(self, request: Request) -> Response:
        query = out.MonitorAlertListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        monitor = None
        if q.get("monitor"):
            monitor = monitor_list().filter(name=q["monitor"]).first()
            if monitor is None:
                raise ValidationError({"monitor": [f"no monitor named {q['monitor']!r}"]})
        alerts = alert_list(monitor=monitor)
        if q["open"] is not None:
            alerts = alerts.filter(OPEN_ALERT) if q["open"] else alerts.exclude(OPEN_ALERT)
        return Response([alert_document(a) for a in alerts.order_by("-created_at", "-pk")[:q["limit"]]])


ALERT_ID = OpenApiParameter("alert_id", {"type": "integer", "minimum": 1}, OpenApiParameter.PATH,
                            description="the alert's id")


class AlertDetailApi(MonitoringApi):
    read_permission = "monitoring.view_alert"

    @extend_schema(parameters=[ALERT_ID], responses=api_responses({200: out.MonitorAlertSerializer}, 404),
                   summary="An alert", operation_id="alert_retrieve")
    def get(self, request: Request, alert_id: int) -> Response:
        return Response(alert_document(alert_get(alert_id=alert_id)))


class AlertAcknowledgeApi(MonitoringApi):
    read_permission = "monitoring.view_alert"

    @extend_schema(parameters=[ALERT_ID], request=out.MonitorAlertAcknowledgeSerializer,
                   responses=api_responses({200: out.MonitorAlertSerializer}, 400, 404, 409),
                   summary="Acknowledge an alert (write scope; audited)", operation_id="alert_acknowledge",
                   description="Needs `monitoring.change_alert` (labeling ops) and a write-scoped token. 409 when "
                               "it was acknowledged already.")
    def post(self, request: Request, alert_id: int) -> Response:
        body = out.MonitorAlertAcknowledgeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        alert = alert_acknowledge(alert=alert_get(alert_id=alert_id), reason=body.validated_data["reason"],
                                  acting_user=request.user)
        return Response(alert_document(alert_get(alert_id=alert.pk)))

