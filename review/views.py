"""The queues page, the labelers-over-time pages (a vendor's, a labeler's), and item images
served to labelers in Label Studio."""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe

from review.charts import MEASURES, weekly_chart
from review.quality_series import DRIFT_RULE, MIN_TRAILING_ANSWERS, MIN_WEEK_ANSWERS, TRAILING_WEEKS
from review.selectors import (
    DEFAULT_WEEKS,
    MAX_WEEKS,
    labeler_get,
    labeler_quality_series,
    quality_window,
    review_queue_overview,
    vendor_get,
    vendor_quality,
    vendor_quality_series,
)
from review.services.quality import quality_bar
from review.services.queues import review_image_name
from touchstone.errors import LocatedError
from touchstone.roles import page_permission_required, permission_require


@page_permission_required("review.view_reviewqueue", to="view review queues")
def queues_overview(request: HttpRequest) -> HttpResponse:
    rows = review_queue_overview()
    if not request.user.has_perm("review.view_labeler"):  # labeler ids are for labeling ops only
        rows = [{**row, "labelers": [], "drifting": []} for row in rows]
    return render(request, "review/queues.html", {"rows": rows, "vendors": vendor_quality(), "bar": quality_bar(),
                                                  "drift_rule": DRIFT_RULE})


def _window(request: HttpRequest):
    raw = request.GET.get("weeks") or str(DEFAULT_WEEKS)  # as the API: an empty value is the default
    if not raw.isdecimal():
        raise LocatedError(f"must be a whole number from 1 to {MAX_WEEKS}, not {raw!r}", field="weeks")
    return quality_window(weeks=int(raw))


def _page(weeks: list, window) -> dict:
    # our own SVG; a narrower drawing for phones keeps its text readable once scaled down
    return {"charts": {key: {size: mark_safe(weekly_chart(weeks, key, show_trailing=key == "accuracy",
                                                          width=width, height=height))
                             for size, width, height in (("wide", 520, 220), ("narrow", 360, 210))}
                       for key in MEASURES},
            "window": window, "choices": [4, 12, 26, 52], "drift_rule": DRIFT_RULE,
            "rule": {"trailing_weeks": TRAILING_WEEKS, "min_trailing": MIN_TRAILING_ANSWERS,
                     "min_week": MIN_WEEK_ANSWERS}}


@page_permission_required("review.view_reviewqueue", to="view review queues")
def vendor_quality_page(request: HttpRequest, vendor_id: int) -> HttpResponse:
    data = vendor_quality_series(vendor=vendor_get(vendor_id=vendor_id), window=_window(request))
    if not request.user.has_perm("review.view_labeler"):  # labeler ids are for labeling ops only
        data["labelers"] = []
    return render(request, "review/vendor_quality.html", {**data, **_page(data["weeks"], data["window"])})


@page_permission_required("review.view_reviewqueue", to="view review queues")
def labeler_quality_page(request: HttpRequest, labeler_id: int) -> HttpResponse:
    permission_require(request.user, "review.view_labeler", to="view a labeler's quality")
    data = labeler_quality_series(labeler=labeler_get(labeler_id=labeler_id), window=_window(request))
    return render(request, "review/labeler_quality.html", {**data, **_page(data["weeks"], data["window"])})


def review_image(request: HttpRequest, token: str) -> HttpResponse:
    """An item's image for a labeler's browser in Label Studio. The signed token is the
    capability: labelers have no Touchstone account, and image ids cannot be guessed."""
    name = review_image_name(token)
    if name is None or not default_storage.exists(name):
        raise Http404("no such image")
    response = FileResponse(default_storage.open(name, "rb"), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=86400"
    # Label Studio loads images with crossorigin="anonymous" from its own origin.
    response["Access-Control-Allow-Origin"] = "*"
    return response
