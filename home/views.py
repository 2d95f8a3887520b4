"""The home page for signed-in staff: what each app has that needs a look, read through the apps'
selectors, one section per permission the user holds."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from evaluation.selectors import signal_list
from goldsets.selectors import goldset_latest_version_list
from monitoring.series import open_alert_list
from policies.selectors import policy_overview_list
from review.selectors import review_queue_attention_list
from runs.selectors import labeling_run_recent_list

RECENT_RUNS = 10

# Each section: (its view permission, its context name, how to read it).
SECTIONS = (
    ("policies.view_policyversion", "policies", policy_overview_list),
    ("runs.view_labelingrun", "runs", lambda: labeling_run_recent_list(limit=RECENT_RUNS)),
    ("review.view_reviewqueue", "queues", review_queue_attention_list),
    ("goldsets.view_goldenset", "goldsets", goldset_latest_version_list),
    ("evaluation.view_evaluation", "signals", lambda: list(signal_list())),
    ("monitoring.view_alert", "alerts", open_alert_list),
)


@staff_member_required
def home(request: HttpRequest) -> HttpResponse:
    sections = {name: read() for perm, name, read in SECTIONS if request.user.has_perm(perm)}
    return render(request, "home/home.html", {"sections": sections, **sections})
