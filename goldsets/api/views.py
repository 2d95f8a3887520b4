"""Golden-set REST API: thin views over selectors and services."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound as DrfNotFound
from rest_framework.exceptions import PermissionDenied
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from goldsets.api import serializers as out
from goldsets.exports import FORMATS, labeler_renamer
from goldsets.freeze import FreezeRule
from goldsets.models import GoldenSetVersion
from goldsets.selectors import (
    goldset_get,
    goldset_list,
    goldset_version_diff,
    goldset_version_get,
    goldset_version_items,
    goldset_version_list,
    goldset_version_stats_document,
)
from goldsets.services import goldset_version_freeze_request
from goldsets.views import CONTENT_TYPES, export_response
from policies.selectors import policy_version_for_labels
from touchstone.api import PermissionApiView, api_responses
from touchstone.errors import NotFound


def _require(request: Request, perm: str) -> None:
    if not request.user.has_perm(perm):
        raise PermissionDenied(f"needs the {perm} permission")


def _version(name: str, number: str) -> GoldenSetVersion:
    return goldset_version_get(name=name, number=None if number == "latest" else int(number))


def _query(serializer_class: type[serializers.Serializer], request: Request, **context: Any) -> dict[str, Any]:
    """The query parameters read through ``serializer_class``; a 400 naming the field otherwise."""
    query = serializer_class(data=request.query_params, context=context)
    query.is_valid(raise_exception=True)
    return query.validated_data


_RETRY_AFTER = OpenApiParameter("Retry-After", int, OpenApiParameter.HEADER, response=[503],
                                description="seconds after which the request may be repeated")
ID = {"type": "integer", "minimum": 0}
# Path parameters as the URL patterns match them: drf-spectacular gives no pattern for the slug and int
# converters, and reads the version's (\d+|latest) as ^\d+|latest$.
NAME = OpenApiParameter("name", {"type": "string", "pattern": r"^[-\w]+$"}, OpenApiParameter.PATH)
SLUG_NAME = OpenApiParameter("name", {"type": "string", "pattern": r"^[-a-zA-Z0-9_]+$"}, OpenApiParameter.PATH)
NUMBER = OpenApiParameter("number", {"type": "string", "pattern": r"^(\d+|latest)$"}, OpenApiParameter.PATH,
                          description="a version number or `latest`")


class GoldenSetApi(PermissionApiView):
    read_permission = "goldsets.view_goldenset"
    read_to = "read golden sets"


class GoldenSetListApi(GoldenSetApi):
    @extend_schema(responses=api_responses({200: out.GoldenSetSerializer(many=True)}), summary="Golden sets",
                   operation_id="goldsets_list")
    def get(self, request: Request) -> Response:
        return Response(out.GoldenSetSerializer(goldset_list(), many=True).data)


class GoldenSetDetailApi(GoldenSetApi):
    @extend_schema(parameters=[NAME], responses=api_responses({200: out.VersionSummarySerializer(many=True)}, 404),
                   summary="A golden set's frozen versions", operation_id="goldset_versions_list")
    def get(self, request: Request, name: str) -> Response:
        versions = goldset_version_list(golden_set=goldset_get(name=name))
        return Response(out.VersionSummarySerializer(versions, many=True).data)


class VersionDetailApi(GoldenSetApi):
    @extend_schema(parameters=[NAME, NUMBER], responses=api_responses({200: out.VersionSerializer}, 404),
                   summary="A version with its statistics", description="`number` is a version number or `latest`.")
    def get(self, request: Request, name: str, number: str) -> Response:
        return Response(goldset_version_stats_document(_version(name, number)))


class ItemPagination(CursorPagination):
    ordering = "position"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def decode_cursor(self, request: Request) -> Cursor | None:
        # DRF checks the offset but passes the position on to filter(position__gt=...): a forged
        # cursor with a position that is not a number would be a 500.
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None and not str(cursor.position).isdecimal():
            raise DrfNotFound(self.invalid_cursor_message)
        return cursor


class VersionItemsApi(GoldenSetApi):
    @extend_schema(
        parameters=[NAME, NUMBER, out.ItemsQuerySerializer],
        responses=api_responses({200: out.GoldenItemPageSerializer}, 400, 404),
        summary="Items of a version (cursor pagination)",
        description="An unknown `gold_label` is a 400 that lists the policy's labels; a bad `cursor` a 404.")
    def get(self, request: Request, name: str, number: str) -> Response:
        version = _version(name, number)
        taxonomy = list(version.policy_version.labels.order_by("position", "pk").values_list("key", flat=True))
        query = _query(out.ItemsQuerySerializer, request, taxonomy=taxonomy)
        if query["raw_ids"]:
            _require(request, "goldsets.view_raw_labeler_ids")
        paginator = ItemPagination()
        page = paginator.paginate_queryset(
            goldset_version_items(version=version, gold_label=query.get("gold_label")), request, self)
        context = {"labeler_name": labeler_renamer(version, raw_ids=query["raw_ids"])}
        return paginator.get_paginated_response(out.GoldenItemSerializer(page, many=True, context=context).data)


class VersionExportApi(GoldenSetApi):
    throttle_scope = "export"

    @extend_schema(
        parameters=[NAME, NUMBER, OpenApiParameter("fmt", str, OpenApiParameter.PATH, enum=FORMATS),
                    out.ExportQuerySerializer],
        responses=api_responses({(200, CONTENT_TYPES[fmt].split(";")[0]): OpenApiTypes.BINARY for fmt in FORMATS},
                             400, 404),
        summary="Download a version (jsonl, csv or parquet); the digest is verified first",
        description="The `X-Golden-Set-Digest` header carries the version's digest.")
    def get(self, request: Request, name: str, number: str, fmt: str) -> Any:
        if fmt not in FORMATS:
            raise NotFound(f"No export format {fmt!r}; use one of {', '.join(FORMATS)}.")
        version = _version(name, number)
        raw_ids = _query(out.ExportQuerySerializer, request)["raw_ids"]
        if raw_ids:
            _require(request, "goldsets.view_raw_labeler_ids")
        return export_response(version, fmt, raw_ids=raw_ids)


class VersionDiffApi(GoldenSetApi):
    @extend_schema(
        parameters=[SLUG_NAME,
                    OpenApiParameter("old", ID, OpenApiParameter.PATH),
                    OpenApiParameter("new", ID, OpenApiParameter.PATH), out.DiffQuerySerializer],
        responses=api_responses({200: out.DiffSerializer}, 400, 404),
        summary="Items added, removed and with changed gold")
    def get(self, request: Request, name: str, old: int, new: int) -> Response:
        limit = _query(out.DiffQuerySerializer, request)["limit"]
        diff = goldset_version_diff(old=goldset_version_get(name=name, number=old),
                                    new=goldset_version_get(name=name, number=new))
        return Response({
            "golden_set": name, "old": old, "new": new, "counts": diff.counts(), "added": diff.added[:limit],
            "removed": diff.removed[:limit],
            "gold_label_changed": [{"item": i, "from": a, "to": b} for i, a, b in diff.changed[:limit]]})


class FreezeApi(GoldenSetApi):
    @extend_schema(
        parameters=[SLUG_NAME, _RETRY_AFTER],
        request=out.FreezeInputSerializer, responses=api_responses({202: out.FreezeSerializer}, 400, 404, 503),
        summary="Freeze a new version on the freeze queue (write scope)",
        description="A 503 (with Retry-After) means the task broker could not be reached: the request is "
                    "recorded as failed with the reason, and may be repeated.")
    def post(self, request: Request, name: str) -> Response:
        out.GoldenSetNameSerializer(data={"name": name}).is_valid(raise_exception=True)
        data = out.FreezeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rule = FreezeRule(min_labels=data.validated_data["min_labels"], rule=data.validated_data["rule"],
                          include_llm_only=data.validated_data["include_llm_only"])
        version = goldset_version_freeze_request(
            name=name, policy_version=policy_version_for_labels(data.validated_data["policy"]), rule=rule,
            changelog=data.validated_data["changelog"], on_worker=True, acting_user=request.user)
        return Response(out.FreezeSerializer(version).data, status=status.HTTP_202_ACCEPTED)


class FreezeStatusApi(GoldenSetApi):
    @extend_schema(
        parameters=[SLUG_NAME,
                    OpenApiParameter("freeze_id", ID, OpenApiParameter.PATH)],
        responses=api_responses({200: out.FreezeSerializer}, 404), summary="The state of a freeze request")
    def get(self, request: Request, name: str, freeze_id: int) -> Response:
        version = GoldenSetVersion.objects.select_related("golden_set").filter(
            pk=freeze_id, golden_set__name=name).first()
        if version is None:
            raise NotFound(f"No freeze {freeze_id} of golden set {name!r}.")
        return Response(out.FreezeSerializer(version).data)
