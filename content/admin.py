"""Admin for content: imported items (read-only), imports, samples (drawn through a service)."""

from __future__ import annotations

import secrets
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.files.storage import default_storage
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from content.models import ContentImage, ContentImport, ContentItem, Sample, SampleMethod
from content.services.sampling import sample_create
from touchstone.admin import ReadOnlyAdmin
from touchstone.errors import ApplicationError


class ContentImageInline(admin.TabularInline):
    model = ContentImage
    fields = ("position", "preview", "original_ref", "width", "height", "sha256", "failure_reason")
    readonly_fields = fields
    extra = 0
    can_delete = False

    @admin.display(description="thumbnail")
    def preview(self, obj: ContentImage) -> str:
        if not obj.thumbnail:
            return "—"
        return format_html('<img src="{}" alt="thumbnail" style="max-height:96px">', default_storage.url(obj.thumbnail))

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ContentItem)
class ContentItemAdmin(ReadOnlyAdmin):
    list_display = ("external_id", "source", "status", "target_part", "created_at")
    list_filter = ("source", "status")
    search_fields = ("external_id", "content_sha256")
    inlines = [ContentImageInline]
    readonly_fields = ("source", "external_id", "parts", "target_part", "metadata", "scores", "content_sha256",
                       "status", "failure_reason", "content_import", "created_at")
    show_full_result_count = False


@admin.register(ContentImport)
class ContentImportAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "status", "imported", "duplicates", "rejected", "identical_bodies", "failed_images",
                    "started_at", "finished_at")
    list_filter = ("status", "source")
    readonly_fields = [f.name for f in ContentImport._meta.fields]


class SampleCreateForm(forms.Form):
    name = forms.CharField(max_length=200)
    method = forms.ChoiceField(choices=SampleMethod.choices)
    size = forms.IntegerField(min_value=1)
    seed = forms.IntegerField(help_text="Recorded: the same frame, parameters and seed give the same sample.")
    source = forms.CharField(required=False, help_text="Only items of this source (empty: all sources).")
    stratify_by = forms.CharField(required=False, help_text="Stratified: the metadata key, e.g. country.")
    allocation = forms.ChoiceField(choices=[("proportional", "proportional"), ("equal", "equal"),
                                            ("neyman", "Neyman")], initial="proportional")
    score_signal = forms.CharField(required=False, help_text="Score-weighted, or Neyman SDs: the score name.")
    floor = forms.FloatField(initial=0.01, min_value=1e-9, help_text="Score-weighted: the minimum size.")


@admin.register(Sample)
class SampleAdmin(ReadOnlyAdmin):
    list_display = ("name", "method", "size", "frame_size", "seed", "created_by", "created_at")
    list_filter = ("method",)
    readonly_fields = ("name", "method", "parameters", "seed", "frame_filter", "frame_size", "requested_size",
                       "size", "expected_size", "strata", "created_by", "created_at")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("content.add_sample")

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
                 ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise admin.sites.PermissionDenied  # type: ignore[attr-defined]
        form = SampleCreateForm(request.POST or None, initial={"seed": secrets.randbelow(2**31)})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                sample = sample_create(
                    name=data["name"], method=data["method"], size=data["size"], seed=data["seed"],
                    source=data["source"] or None, stratify_by=data["stratify_by"] or None,
                    allocation=data["allocation"], score_signal=data["score_signal"] or None, floor=data["floor"],
                    acting_user=request.user)
            except ApplicationError as exc:
                self.message_user(request, f"Cannot draw the sample: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"Drew {sample.size} of {sample.frame_size} items.")
                return HttpResponseRedirect(reverse("admin:content_sample_change", args=[sample.pk]))
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "form": form,
                   "title": "Draw a sample", "add": True, "has_view_permission": True}
        return TemplateResponse(request, "admin/content/sample/add.html", context)
