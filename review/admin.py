"""Admin for human review: vendors, labelers (pause/resume), hidden gold, labels, queues, tasks."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.urls import reverse

from review.models import HiddenGoldItem, HumanLabel, Labeler, LabelImport, ReviewQueue, ReviewTask, Vendor
from review.services import quality
from touchstone.admin import ReadOnlyAdmin
from touchstone.errors import ApplicationError


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
    one by one here, or a whole frozen golden set with `manage.py goldset hidden-gold NAME`."""

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


@admin.register(ReviewQueue)
class ReviewQueueAdmin(admin.ModelAdmin):
    """Queues are created with `manage.py queue create` (it creates the Label Studio project)."""

    list_display = ("name", "vendor", "purpose", "policy_version", "overlap", "gold_share", "ls_project_id",
                    "last_synced_at", "status_detail")
    list_filter = ("purpose", "vendor")
    readonly_fields = ("name", "policy_version", "vendor", "purpose", "overlap", "image_slots", "parts",
                       "show_llm_suggestions", "ls_project_id",
                       "last_synced_at", "status_detail", "created_by", "created_at")

    def view_on_site(self, obj: ReviewQueue) -> str:
        """The change page's "View on site" button opens the queue on the queues page."""
        return f"{reverse('queues')}#queue-{obj.name}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ReviewTask)
class ReviewTaskAdmin(ReadOnlyAdmin):
    list_display = ("queue", "item", "status", "labels", "is_gold", "ls_task_id", "completed_at")
    list_filter = ("queue", "status", "is_gold")
    list_select_related = ("queue", "item")
