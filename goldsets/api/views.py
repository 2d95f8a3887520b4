"""Golden-set REST API: thin views over selectors and services."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import PermissionDenied
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

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
from goldsets.views import export_response
from policies.selectors import policy_version_for_labels
from touchstone.errors import NotFound


def _require(request: Request, perm: str) -> None:
    if not request.user.has_perm(perm):
        raise PermissionDenied(f"needs the {perm} permission")


def _version(name: str, number: str) -> GoldenSetVersion:
    return goldset_version_get(name=name, number=None if number == "latest" else int(number))


class GoldenSetApi(APIView):
    throttle_scope = "api"

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        _require(request, "goldsets.view_goldenset")


class GoldenSetListApi(GoldenSetApi):
    @extend_schema(responses=out.GoldenSetSerializer(many=True), summary="Golden sets", operation_id="goldsets_list")
    def get(self, request: Request) -> Response:
        return Response(out.GoldenSetSerializer(goldset_list(), many=True).data)


class GoldenSetDetailApi(GoldenSetApi):
    @extend_schema(responses=out.VersionSummarySerializer(many=True), summary="A golden set's frozen versions",
                   operation_id="goldset_versions_list")
    def get(self, request: Request, name: str) -> Response:
        versions = goldset_version_list(golden_set=goldset_get(name=name))
        return Response(out.VersionSummarySerializer(versions, many=True).data)


class VersionDetailApi(GoldenSetApi):
    @extend_schema(responses=out.VersionSerializer, summary="A version with its statistics",
                   description="`number` is a version number or `latest`.")
    def get(self, request: Request, name: str, number: str) -> Response:
        return Response(goldset_version_stats_document(_version(name, number)))


class ItemPagination(CursorPagination):
    ordering = "position"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class VersionItemsApi(GoldenSetApi):
    @extend_schema(
        parameters=[OpenApiParameter("gold_label", str, description="only items with this gold label"),
                    OpenApiParameter("raw_ids", bool, description="raw labeler ids (needs the permission)")],
        responses=out.GoldenItemSerializer(many=True), summary="Items of a version (cursor pagination)")
    def get(self, request: Request, name: str, number: str) -> Response:
        version = _version(name, number)
        raw_ids = request.query_params.get("raw_ids") in ("1", "true")
        if raw_ids:
            _require(request, "goldsets.view_raw_labeler_ids")
        paginator = ItemPagination()
        page = paginator.paginate_queryset(
            goldset_version_items(version=version, gold_label=request.query_params.get("gold_label")), request, self)
        context = {"labeler_name": labeler_renamer(version, raw_ids=raw_ids)}
        return paginator.get_paginated_response(out.GoldenItemSerializer(page, many=True, context=context).data)


class VersionExportApi(GoldenSetApi):
    throttle_scope = "export"

    @extend_schema(
        parameters=[OpenApiParameter("raw_ids", bool, description="raw labeler ids (needs the permission)")],
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
        summary="Download a version (jsonl, csv or parquet); the digest is verified first",
        description="The `X-Golden-Set-Digest` header carries the version's digest.")
    def get(self, request: Request, name: str, number: str, fmt: str) -> Any:
        if fmt not in FORMATS:
            raise NotFound(f"No export format {fmt!r}; use one of {', '.join(FORMATS)}.")
        version = _version(name, number)
        raw_ids = request.query_params.get("raw_ids") in ("1", "true")
        if raw_ids:
            _require(request, "goldsets.view_raw_labeler_ids")
        return export_response(version, fmt, raw_ids=raw_ids)


class VersionDiffApi(GoldenSetApi):
    @extend_schema(parameters=[OpenApiParameter("limit", int, description="items listed per kind (default 1000)")],
                   responses=out.DiffSerializer, summary="Items added, removed and with changed gold")
    def get(self, request: Request, name: str, old: int, new: int) -> Response:
        limit = int(request.query_params.get("limit", 1000))
        diff = goldset_version_diff(old=goldset_version_get(name=name, number=old),
                                    new=goldset_version_get(name=name, number=new))
        return Response({
            "golden_set": name, "old": old, "new": new, "counts": diff.counts(), "added": diff.added[:limit],
            "removed": diff.removed[:limit],
            "gold_label_changed": [{"item": i, "from": a, "to": b} for i, a, b in diff.changed[:limit]]})


class FreezeApi(GoldenSetApi):
    @extend_schema(request=out.FreezeInputSerializer, responses={202: out.FreezeSerializer},
                   summary="Freeze a new version on the freeze queue (write scope)")
    def post(self, request: Request, name: str) -> Response:
        data = out.FreezeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rule = FreezeRule(min_labels=data.validated_data["min_labels"], rule=data.validated_data["rule"],
                          include_llm_only=data.validated_data["include_llm_only"])
        version = goldset_version_freeze_request(
            name=name, policy_version=policy_version_for_labels(data.validated_data["policy"]), rule=rule,
            changelog=data.validated_data["changelog"], on_worker=True, acting_user=request.user)
        return Response(out.FreezeSerializer(version).data, status=status.HTTP_202_ACCEPTED)


class FreezeStatusApi(GoldenSetApi):
    @extend_schema(responses=out.FreezeSerializer, summary="The state of a freeze request")
    def get(self, request: Request, name: str, freeze_id: int) -> Response:
        version = GoldenSetVersion.objects.select_related("golden_set").filter(
            pk=freeze_id, golden_set__name=name).first()
        if version is None:
            raise NotFound(f"No freeze {freeze_id} of golden set {name!r}.")
        return Response(out.FreezeSerializer(version).data)
