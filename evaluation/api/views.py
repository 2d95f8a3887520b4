"""Signals REST API: thin views over selectors and services. Reads need the view permissions
(pipelines have them); adding scores needs a write-scoped token (or a session) of a user with
``evaluation.add_signalscore`` (labeling ops). Evaluations: pipelines read them
(``evaluation.view_evaluation``); creating one needs a write-scoped token of a user with
``evaluation.add_evaluation`` (labeling ops). Comparisons use the evaluations' permissions."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from evaluation.api import serializers as out
from evaluation.models import SignalScore
from evaluation.selectors import (
    comparison_get,
    comparison_list,
    evaluation_get,
    evaluation_list,
    signal_get,
    signal_list,
    signal_version_get,
    signal_version_list,
)
from evaluation.services import (
    API_MAX_ROWS,
    ComparisonOptions,
    EvaluationOptions,
    comparison_create,
    evaluation_create,
    signal_scores_add,
)
from goldsets.selectors import goldset_version_get
from touchstone.api import PermissionApiView, api_responses
from touchstone.errors import NotFound
from touchstone.roles import permission_require

NAME = OpenApiParameter("name", {"type": "string", "pattern": r"^[-a-zA-Z0-9_]+$"}, OpenApiParameter.PATH,
                        description="the signal's name")
NUMBER = OpenApiParameter("number", {"type": "integer", "minimum": 0}, OpenApiParameter.PATH,
                          description="the version number")


class SignalApi(PermissionApiView):
    read_permission = "evaluation.view_signal"
    read_to = "read signals"


class SignalListApi(SignalApi):
    @extend_schema(responses=api_responses({200: out.SignalSerializer(many=True)}), summary="Signals",
                   operation_id="signals_list")
    def get(self, request: Request) -> Response:
        return Response(out.SignalSerializer(signal_list(), many=True).data)


class SignalDetailApi(SignalApi):
    @extend_schema(parameters=[NAME], responses=api_responses({200: out.SignalDetailSerializer}, 404),
                   summary="A signal with its versions", operation_id="signal_retrieve")
    def get(self, request: Request, name: str) -> Response:
        signal = signal_get(name=name)
        versions = list(signal_version_list(signal=signal))
        signal.version_count = len(versions)
        return Response({**out.SignalSerializer(signal).data,
                         "versions": out.SignalVersionSerializer(versions, many=True).data})


class SignalVersionDetailApi(SignalApi):
    read_permission = "evaluation.view_signalversion"

    @extend_schema(parameters=[NAME, NUMBER], responses=api_responses({200: out.SignalVersionSerializer}, 404),
                   summary="A signal version", operation_id="signal_version_retrieve")
    def get(self, request: Request, name: str, number: int) -> Response:
        return Response(out.SignalVersionSerializer(signal_version_get(name=name, number=number)).data)


class ScorePagination(CursorPagination):
    ordering = "id"
    page_size = 1000
    page_size_query_param = "page_size"
    max_page_size = 10_000

    def decode_cursor(self, request: Request) -> Cursor | None:
        # A forged cursor whose position is not a number would reach filter(id__gt=...) as a 500.
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None and not str(cursor.position).isdecimal():
            raise NotFound(self.invalid_cursor_message)
        return cursor


class SignalScoresApi(SignalApi):
    read_permission = "evaluation.view_signalscore"

    @extend_schema(
        parameters=[NAME, NUMBER,
                    OpenApiParameter("cursor", str, description="the `next` or `previous` link's cursor"),
                    OpenApiParameter("page_size", int, description="default 1000, at most 10,000")],
        responses=api_responses({200: out.ScorePageSerializer}, 404),
        summary="A version's scores (cursor pagination)", operation_id="signal_scores_list")
    def get(self, request: Request, name: str, number: int) -> Response:
        version = signal_version_get(name=name, number=number)
        paginator = ScorePagination()
        page = paginator.paginate_queryset(
            SignalScore.objects.filter(version=version).select_related("item").only(
                "id", "score", "label", "observed_at", "item__source", "item__external_id"), request, self)
        return paginator.get_paginated_response(out.ScoreSerializer(page, many=True).data)

    @extend_schema(
        parameters=[NAME, NUMBER], request=out.ScoreRowSerializer(many=True),
        responses=api_responses({201: out.ScoreBatchResultSerializer,
                              400: OpenApiResponse(out.RowsInvalidSerializer,
                                                   description="Bad rows, each named by its index and field; "
                                                               "nothing of the batch was stored")}, 404, 409),
        summary="Add a batch of scores to a version (write scope)", operation_id="signal_scores_add",
        description=f"The body is a JSON list of at most {API_MAX_ROWS:,} rows, stored all or nothing. A row "
                    "whose item does not exist is not an error: it is counted and listed in the answer. A row "
                    "for an item the version already has a score of is a bad row (scores are write-once). "
                    "409: another batch stored scores of the same items at the same time.")
    def post(self, request: Request, name: str, number: int) -> Response:
        version = signal_version_get(name=name, number=number)
        body = out.ScoreBatchInputSerializer(data={"rows": request.data})
        body.is_valid(raise_exception=True)
        job = signal_scores_add(version=version, rows=body.validated_data["rows"], acting_user=request.user)
        return Response(out.ScoreBatchResultSerializer(job).data, status=status.HTTP_201_CREATED)


# --- evaluations -------------------------------------------------------------------------------


class EvaluationApi(PermissionApiView):
    read_permission = "evaluation.view_evaluation"
    read_to = "read evaluations"


class EvaluationListApi(EvaluationApi):
    @extend_schema(parameters=[out.EvaluationListQuerySerializer],
                   responses=api_responses({200: out.EvaluationSerializer(many=True)}, 400),
                   summary="Evaluations, newest first (without their documents)", operation_id="evaluations_list")
    def get(self, request: Request) -> Response:
        query = out.EvaluationListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        evaluations = evaluation_list(signal_name=q.get("signal"), signal_number=q.get("version"),
                                      golden_set_name=q.get("golden_set"))[:q["limit"]]
        return Response(out.EvaluationSerializer(evaluations, many=True).data)

    @extend_schema(
        request=out.EvaluationCreateSerializer,
        responses=api_responses({201: out.EvaluationDetailSerializer}, 400, 404),
        summary="Evaluate a signal version on a golden-set version (write scope)", operation_id="evaluation_create",
        description="Computes and stores an immutable evaluation (labeling ops: `evaluation.add_evaluation`). "
                    "400 names the bad field: `{field: [reason]}` for the body's shape, `{code, message, extra: "
                    "{field}}` for what only the evaluation can check (a threshold for a label signal, an "
                    "unknown violating label, no scored item).")
    def post(self, request: Request) -> Response:
        body = out.EvaluationCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        b = body.validated_data
        permission_require(request.user, "evaluation.add_evaluation", to="evaluate signals")
        evaluation = evaluation_create(
            signal_version=signal_version_get(name=b["signal"], number=b["version"]),
            golden_set_version=goldset_version_get(name=b["golden_set"], number=b["golden_set_version"]),
            options=EvaluationOptions(threshold=b["threshold"], target_precision=b["target_precision"],
                                      max_fpr=b["max_fpr"], slice_by=b["slice_by"],
                                      violating_labels=tuple(b["violating_labels"]) if b["violating_labels"] else None,
                                      n_resamples=b["n_resamples"], seed=b["seed"]),
            acting_user=request.user)
        return Response(out.EvaluationDetailSerializer(evaluation_get(evaluation_id=evaluation.pk)).data,
                        status=status.HTTP_201_CREATED)


class EvaluationDetailApi(EvaluationApi):
    @extend_schema(parameters=[OpenApiParameter("evaluation_id", {"type": "integer", "minimum": 1},
                                                OpenApiParameter.PATH, description="the evaluation's id")],
                   responses=api_responses({200: out.EvaluationDetailSerializer}, 404),
                   summary="An evaluation with its results document", operation_id="evaluation_retrieve")
    def get(self, request: Request, evaluation_id: int) -> Response:
        return Response(out.EvaluationDetailSerializer(evaluation_get(evaluation_id=evaluation_id)).data)


# --- comparisons -------------------------------------------------------------------------------


class ComparisonListApi(EvaluationApi):
    @extend_schema(parameters=[out.ComparisonListQuerySerializer],
                   responses=api_responses({200: out.ComparisonSerializer(many=True)}, 400),
                   summary="Comparisons, newest first (without their documents)", operation_id="comparisons_list")
    def get(self, request: Request) -> Response:
        query = out.ComparisonListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        comparisons = comparison_list(signal_name=q.get("signal"), golden_set_name=q.get("golden_set"))[:q["limit"]]
        return Response(out.ComparisonSerializer(comparisons, many=True).data)

    @extend_schema(
        request=out.ComparisonCreateSerializer,
        responses=api_responses({201: out.ComparisonDetailSerializer}, 400, 404),
        summary="Compare two signal versions on a golden-set version, paired (write scope)",
        operation_id="comparison_create",
        description="Computes and stores an immutable comparison, B − A, on the gold items both versions scored "
                    "(labeling ops: `evaluation.add_evaluation`). 400 names the bad field: `{field: [reason]}` "
                    "for the body's shape, `{code, message, extra: {field}}` for what only the comparison can "
                    "check (a threshold for two label signals, versions answering different questions, no item "
                    "scored by both). 404: an unknown signal version or golden set.")
    def post(self, request: Request) -> Response:
        body = out.ComparisonCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        b = body.validated_data
        permission_require(request.user, "evaluation.add_evaluation", to="compare signals")
        comparison = comparison_create(
            signal_version_a=signal_version_get(name=b["signal_a"], number=b["version_a"]),
            signal_version_b=signal_version_get(name=b["signal_b"], number=b["version_b"]),
            golden_set_version=goldset_version_get(name=b["golden_set"], number=b["golden_set_version"]),
            options=ComparisonOptions(threshold=b["threshold"], target_precision=b["target_precision"],
                                      max_fpr=b["max_fpr"], slice_by=b["slice_by"], n_resamples=b["n_resamples"],
                                      seed=b["seed"]),
            acting_user=request.user)
        return Response(out.ComparisonDetailSerializer(comparison_get(comparison_id=comparison.pk)).data,
                        status=status.HTTP_201_CREATED)


class ComparisonDetailApi(EvaluationApi):
    @extend_schema(parameters=[OpenApiParameter("comparison_id", {"type": "integer", "minimum": 1},
                                                OpenApiParameter.PATH, description="the comparison's id")],
                   responses=api_responses({200: out.ComparisonDetailSerializer}, 404),
                   summary="A comparison with its results document", operation_id="comparison_retrieve")
    def get(self, request: Request, comparison_id: int) -> Response:
        return Response(out.ComparisonDetailSerializer(comparison_get(comparison_id=comparison_id)).data)
