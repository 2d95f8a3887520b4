"""Labelers over time, read-only REST endpoints: the weekly series of a labeler and of a vendor
(see review.quality_series). The same permissions as the pages: ``review.view_reviewqueue``, and
``review.view_labeler`` for anything naming labelers; read-scoped tokens suffice."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from review.api import serializers as out
from review.selectors import (
    labeler_get,
    labeler_quality_document,
    labeler_quality_series,
    quality_window,
    vendor_get,
    vendor_quality_document,
    vendor_quality_series,
)
from touchstone.api import ERROR_RESPONSE, PermissionApiView
from touchstone.roles import permission_require

RESPONSES = {code: ERROR_RESPONSE for code in (400, 401, 403, 404, 429)}
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}


class QualityApi(PermissionApiView):
    read_permission = "review.view_reviewqueue"
    read_to = "read labeler quality"

    def window(self, request: Request):
        query = out.QualityQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return quality_window(weeks=query.validated_data["weeks"])


class LabelerQualityApi(QualityApi):
    @extend_schema(parameters=[OpenApiParameter("labeler_id", ID_SCHEMA, OpenApiParameter.PATH),
                               out.QualityQuerySerializer],
                   responses={200: out.LabelerQualitySerializer, **RESPONSES},
                   summary="A labeler's weekly quality series and drift flags", operation_id="labeler_quality")
    def get(self, request: Request, labeler_id: int) -> Response:
        permission_require(request.user, "review.view_labeler", to="read a labeler's quality")
        data = labeler_quality_series(labeler=labeler_get(labeler_id=labeler_id), window=self.window(request))
        return Response(out.LabelerQualitySerializer(labeler_quality_document(data)).data)


class VendorQualityApi(QualityApi):
    @extend_schema(parameters=[OpenApiParameter("vendor_id", ID_SCHEMA, OpenApiParameter.PATH),
                               out.QualityQuerySerializer],
                   responses={200: out.VendorQualitySerializer, **RESPONSES},
                   summary="A vendor's weekly quality series and its labelers' drift flags "
                           "(labelers listed only with review.view_labeler)", operation_id="vendor_quality")
    def get(self, request: Request, vendor_id: int) -> Response:
        data = vendor_quality_series(vendor=vendor_get(vendor_id=vendor_id), window=self.window(request))
        if not request.user.has_perm("review.view_labeler"):
            data["labelers"] = []
        return Response(out.VendorQualitySerializer(vendor_quality_document(data)).data)
