"""The queues page, and item images served to labelers in Label Studio."""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from review.selectors import review_queue_overview, vendor_quality
from review.services.quality import quality_bar
from review.services.queues import review_image_name
from touchstone.roles import page_permission_required


@page_permission_required("review.view_reviewqueue", to="view review queues")
def queues_overview(request: HttpRequest) -> HttpResponse:
    rows = review_queue_overview()
    if not request.user.has_perm("review.view_labeler"):  # labeler ids are for labeling ops only
        rows = [{**row, "labelers": []} for row in rows]
    return render(request, "review/queues.html", {"rows": rows, "vendors": vendor_quality(), "bar": quality_bar()})


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
