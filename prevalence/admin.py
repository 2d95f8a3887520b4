"""Prevalence estimates in the admin: immutable, shown read-only with a link to their page; made
by ``manage.py prevalence estimate`` or the API."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from prevalence.models import PrevalenceEstimate
from touchstone.admin import ReadOnlyAdmin


@admin.register(PrevalenceEstimate)
class PrevalenceEstimateAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "policy_version", "label", "estimator", "estimate", "ci_low", "ci_high", "n_human",
                    "n_llm", "simulated", "run", "created_at", "page")
    list_select_related = ("policy_version__policy", "run", "sample")
    list_filter = ("estimator", "label", "simulated")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields] + ["page"]

    @admin.display(description="page")
    def page(self, obj: PrevalenceEstimate) -> str:
        return format_html('<a href="{}">open the estimate page</a>', reverse("prevalence-estimate", args=[obj.pk]))
