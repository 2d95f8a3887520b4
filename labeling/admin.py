"""Admin for labeling ops: imported content (read-only), imports, samples."""

from __future__ import annotations

import secrets
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from labeling.models import (
    ContentImage,
    ContentImport,
    ContentItem,
    HiddenGoldItem,
    HumanLabel,
    Labeler,
    LabelImport,
    LabelingRun,
    LLMBatch,
    LLMEndpoint,
    ReviewQueue,
    ReviewTask,
    RunVoter,
    Sample,
    SampleMethod,
    Vendor,
)
from labeling.services import quality, runs
from labeling.services.sampling import sample_create
from touchstone.errors import ApplicationError


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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
        from django.core.files.storage import default_storage

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
        return request.user.has_perm("labeling.add_sample")

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
                return HttpResponseRedirect(reverse("admin:labeling_sample_change", args=[sample.pk]))
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "form": form,
                   "title": "Draw a sample", "add": True, "has_view_permission": True}
        return TemplateResponse(request, "admin/labeling/sample/add.html", context)


@admin.register(LLMEndpoint)
class LLMEndpointAdmin(admin.ModelAdmin):
    list_display = ("name", "base_url", "is_simulator", "max_concurrency", "requests_per_minute", "tokens_per_minute",
                    "price_input_per_million", "price_output_per_million")


class RunVoterInline(admin.TabularInline):
    model = RunVoter
    fields = ("position", "endpoint", "model", "temperature", "seed")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _run_action(service: Any, verb: str) -> Any:
    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: Any) -> None:
        for run in queryset:
            try:
                service(run=run, acting_user=request.user)
            except ApplicationError as exc:
                modeladmin.message_user(request, f"{run}: {exc.message}", messages.ERROR)
            else:
                modeladmin.message_user(request, f"{run}: {verb}.")

    action.__name__ = f"run_{verb.replace(' ', '_')}"
    action.short_description = f"{verb.capitalize()} selected runs"  # type: ignore[attr-defined]
    return action


@admin.register(LabelingRun)
class LabelingRunAdmin(ReadOnlyAdmin):
    list_display = ("name", "status", "executor", "sample", "prompt_version", "page", "estimated_cost", "created_at")
    list_filter = ("status", "executor")
    list_select_related = ("sample", "prompt_version__policy_version__policy",
                           "prompt_version__template_version__template")
    inlines = [RunVoterInline]
    readonly_fields = [f.name for f in LabelingRun._meta.fields]
    actions = [_run_action(runs.labeling_run_start, "started"), _run_action(runs.labeling_run_pause, "paused"),
               _run_action(runs.labeling_run_resume, "resumed"), _run_action(runs.labeling_run_cancel, "cancelled"),
               _run_action(runs.labeling_run_retry_failed, "retried failed")]

    @admin.display(description="run page")
    def page(self, obj: LabelingRun) -> str:
        return format_html('<a href="{}">progress</a>', reverse("run-detail", args=[obj.pk]))

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Allows the state-changing actions (which go through services); fields stay read-only.
        return obj is None and request.user.has_perm("labeling.change_labelingrun")


@admin.register(Vendor)
class VendorAdmin(admin.ModelAdmin):
    list_display = ("name", "is_expert", "created_at")
    search_fields = ("name",)


@admin.register(Labeler)
class LabelerAdmin(admin.ModelAdmin):
    """Pausing goes through the actions: it also stops counting the labeler's open labels and
    serves those tasks to others in Label Studio."""

    list_display = ("external_id", "vendor", "status", "flag_reason", "paused_at", "created_at")
    list_filter = ("vendor", "status", ("flagged_at", admin.EmptyFieldListFilter))
    search_fields = ("external_id",)
    readonly_fields = ("vendor", "external_id", "status", "paused_at", "flagged_at", "flag_reason", "created_at")
    actions = ("pause", "resume")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Pause: their labels stop counting, their open tasks go to others")
    def pause(self, request: HttpRequest, queryset: Any) -> None:
        self._each(request, queryset, lambda labeler: quality.labeler_pause(
            labeler=labeler, reason="paused in the admin", acting_user=request.user), "paused")

    @admin.action(description="Resume: their labels count again from now on")
    def resume(self, request: HttpRequest, queryset: Any) -> None:
        self._each(request, queryset, lambda labeler: quality.labeler_resume(labeler=labeler,
                                                                              acting_user=request.user), "resumed")

    def _each(self, request: HttpRequest, queryset: Any, action: Any, done: str) -> None:
        for labeler in queryset:
            try:
                action(labeler)
            except ApplicationError as exc:
                self.message_user(request, f"{labeler}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{labeler}: {done}")


class HiddenGoldForm(forms.ModelForm):
    class Meta:
        model = HiddenGoldItem
        fields = ("policy_version", "item", "label")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        version, label = data.get("policy_version"), data.get("label")
        if version and label and not version.labels.filter(key=label).exists():
            self.add_error("label", f"{label!r} is not in the taxonomy of {version}")
        return data


@admin.register(HiddenGoldItem)
class HiddenGoldItemAdmin(admin.ModelAdmin):
    """Items with a known label, mixed into vendor queues at each queue's gold share. Add them
    one by one here, or a whole frozen golden set with `manage.py queue gold`."""

    form = HiddenGoldForm
    list_display = ("item", "label", "policy_version", "origin", "origin_detail", "created_at")
    list_filter = ("origin", "policy_version")
    list_select_related = ("item", "policy_version__policy")
    raw_id_fields = ("item",)
    search_fields = ("item__external_id",)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: HiddenGoldItem, form: Any, change: bool) -> None:
        marked = quality.hidden_gold_mark(policy_version=obj.policy_version, item=obj.item, label=obj.label,
                                          acting_user=request.user)
        obj.pk = marked.pk


@admin.register(HumanLabel)
class HumanLabelAdmin(ReadOnlyAdmin):
    list_display = ("item", "labeler", "label", "role", "is_valid", "source", "policy_version", "labeled_at")
    list_filter = ("source", "role", "is_valid", "policy_version")
    list_select_related = ("item", "labeler__vendor", "policy_version__policy")
    search_fields = ("item__external_id", "labeler__external_id")


@admin.register(LabelImport)
class LabelImportAdmin(ReadOnlyAdmin):
    list_display = ("pk", "path", "policy_version", "status", "imported", "duplicates", "rejected", "started_at")


@admin.register(LLMBatch)
class LLMBatchAdmin(ReadOnlyAdmin):
    list_display = ("run", "remote_batch_id", "status", "remote_status", "request_count", "polls", "updated_at")
    list_filter = ("status",)
    list_select_related = ("run",)


@admin.register(ReviewQueue)
class ReviewQueueAdmin(admin.ModelAdmin):
    """Queues are created with `manage.py queue create` (it creates the Label Studio project)."""

    list_display = ("name", "vendor", "purpose", "policy_version", "overlap", "gold_share", "ls_project_id",
                    "last_synced_at", "status_detail")
    list_filter = ("purpose", "vendor")
    readonly_fields = ("name", "policy_version", "vendor", "purpose", "overlap", "image_slots", "parts",
                       "show_llm_suggestions", "ls_project_id",
                       "last_synced_at", "status_detail", "created_by", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ReviewTask)
class ReviewTaskAdmin(ReadOnlyAdmin):
    list_display = ("queue", "item", "status", "labels", "is_gold", "ls_task_id", "completed_at")
    list_filter = ("queue", "status", "is_gold")
    list_select_related = ("queue", "item")
