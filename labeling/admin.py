"""Admin for labeling ops: imported content (read-only), imports, samples."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from labeling.models import ContentImage, ContentImport, ContentItem


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
