"""Prevalence REST API: thin views over selectors and the service. Reading needs
``prevalence.view_prevalenceestimate`` (pipelines, labeling ops); computing needs a write-scoped
token (or a session) of a user with ``prevalence.add_prevalenceestimate`` (labeling ops)."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from goldsets.selectors import goldset_version_get
from prevalence.api import serializers as out
from prevalence.documents import estimate_document
from prevalence.models import PrevalenceEstimate
from prevalence.selectors import prevalence_estimate_get, prevalence_estimate_list, sample_get
from prevalence.services import PrevalenceRequest, prevalence_estimate_create
from runs.selectors import labeling_run_get
from touchstone.api import PermissionApiView, api_responses
from touchstone.roles import permission_require


def _document(estimate: PrevalenceEstimate) -> dict:
    return {**estimate_document(estimate), "page": reverse("prevalence-estimate", args=[estimate.pk])}


class PrevalenceApi(PermissionApiView):
    read_permission = "prevalence.view_prevalenceestimate"
    read_to = "read prevalence estimates"


class EstimateListApi(PrevalenceApi):
    @extend_schema(parameters=[out.PrevalenceEstimateListQuerySerializer],
                   responses=api_responses({200: out.PrevalenceEstimateSerializer(many=True)}, 400),
                   summary="Prevalence estimates, newest first", operation_id="prevalence_estimates_list")
    def get(self, request: Request) -> Response:
        query = out.PrevalenceEstimateListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        estimates = prevalence_estimate_list(policy_slug=q.get("policy"))
        if q.get("label"):
            estimates = estimates.filter(label=q["label"])
        return Response([_document(e) for e in estimates[:q["limit"]]])

    @extend_schema(
        request=out.PrevalenceEstimateCreateSerializer,
        responses=api_responses({201: out.PrevalenceEstimateSerializer(many=True)}, 400, 404),
        summary="Estimate prevalence from a labeling run on its sample (write scope)",
        operation_id="prevalence_estimates_create",
        description="Computes and stores immutable estimates (labeling ops: `prevalence.add_prevalenceestimate`). "
                    "400 names the bad field: `{field: [reason]}` for the body's shape, `{code, message, extra: "
                    "{field}}` for what only the estimate can check (an unknown label, items still pending, a "
                    "stratified estimator on a score-weighted sample, a routing group without human labels).")
    def post(self, request: Request) -> Response:
        body = out.PrevalenceEstimateCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        b = body.validated_data
        permission_require(request.user, "prevalence.add_prevalenceestimate", to="compute prevalence estimates")
        golden = (goldset_version_get(name=b["golden_set"], number=b["golden_set_version"])
                  if b["golden_set"] else None)
        rows = prevalence_estimate_create(
            sample=sample_get(name=b["sample"]), run=labeling_run_get(name_or_id=b["run"]),
            request=PrevalenceRequest(estimators=tuple(b["estimators"]) if b["estimators"] else None,
                                      labels=tuple(b["labels"]) if b["labels"] else None, alpha=b["alpha"],
                                      allow_pending=b["allow_pending"]),
            golden_set_version=golden, acting_user=request.user)
        return Response([_document(prevalence_estimate_get(estimate_id=r.pk)) for r in rows],
                        status=status.HTTP_201_CREATED)


class EstimateDetailApi(PrevalenceApi):
    @extend_schema(parameters=[OpenApiParameter("estimate_id", {"type": "integer", "minimum": 1},
                                                OpenApiParameter.PATH, description="the estimate's id")],
                   responses=api_responses({200: out.PrevalenceEstimateSerializer}, 404),
                   summary="A prevalence estimate", operation_id="prevalence_estimate_retrieve")
    def get(self, request: Request, estimate_id: int) -> Response:
        return Response(_document(prevalence_estimate_get(estimate_id=estimate_id)))
