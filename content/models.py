"""Content items and their images; imports; samples and their members with inclusion probabilities."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class ContentItemStatus(models.TextChoices):
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class ImportJob(models.Model):
    """What one import command read and what became of it (content or labels)."""

    class Status(models.TextChoices):
        RUNNING = "running"
        FINISHED = "finished"
        FAILED = "failed"

    path = models.CharField(max_length=1000)
    strict = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    lines_read = models.PositiveIntegerField(default=0)
    imported = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="The first rejected lines, with reasons.")
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-started_at"]


class ContentImport(ImportJob):
    """One run of ``content import``."""

    source = models.CharField(max_length=100)
    identical_bodies = models.PositiveIntegerField(default=0)
    failed_images = models.PositiveIntegerField(default=0)

    class Meta(ImportJob.Meta):
        pass

    def __str__(self) -> str:
        return f"import #{self.pk} {self.source} ← {self.path}"


class ContentItem(models.Model):
    """A multi-part unit of content: named text parts, images, metadata and classifier scores."""

    source = models.CharField(max_length=100)
    external_id = models.CharField(max_length=255)
    parts = models.JSONField(help_text="Named text parts, e.g. {'query': …, 'response': …}.")
    target_part = models.CharField(max_length=40, blank=True, help_text="The part to judge; empty: all.")
    metadata = models.JSONField(default=dict, blank=True)
    scores = models.JSONField(default=dict, blank=True, help_text="Classifier scores by signal name.")
    content_sha256 = models.CharField(max_length=64, db_index=True)
    status = models.CharField(max_length=16, choices=ContentItemStatus.choices, default=ContentItemStatus.READY)
    failure_reason = models.TextField(blank=True)
    content_import = models.ForeignKey(ContentImport, null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="items")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="content_item_source_external_id"),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id}"


class ContentImage(models.Model):
    item = models.ForeignKey(ContentItem, on_delete=models.CASCADE, related_name="images")
    position = models.PositiveSmallIntegerField()
    original_ref = models.CharField(max_length=2000, help_text="The path or URL as given in the import.")
    file = models.CharField(max_length=300, blank=True, help_text="Storage name of the normalised image.")
    thumbnail = models.CharField(max_length=300, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True, help_text="Of the original bytes.")
    failure_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["item", "position"]
        constraints = [models.UniqueConstraint(fields=["item", "position"], name="content_image_position")]

    def __str__(self) -> str:
        return f"{self.item} image {self.position}"


class SampleMethod(models.TextChoices):
    UNIFORM = "uniform", "Uniform (simple random sample without replacement)"
    STRATIFIED = "stratified", "Stratified by a metadata key"
    SCORE_WEIGHTED = "score_weighted", "Probability proportional to a classifier score"


class Sample(models.Model):
    """A probability sample of content items; reproducible from (frame, method, parameters, seed)."""

    name = models.CharField(max_length=200, unique=True)
    method = models.CharField(max_length=20, choices=SampleMethod.choices)
    parameters = models.JSONField(default=dict, blank=True)
    seed = models.BigIntegerField()
    frame_filter = models.JSONField(default=dict, blank=True, help_text="Which items formed the frame.")
    frame_size = models.PositiveBigIntegerField(help_text="Rows in the frame (a frame file can hold billions).")
    requested_size = models.PositiveIntegerField()
    size = models.PositiveIntegerField()
    expected_size = models.FloatField(help_text="Sum of the members' inclusion probabilities.")
    strata = models.JSONField(default=dict, blank=True, help_text="Per stratum: frame size, sample size.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class SampleMember(models.Model):
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="members")
    item = models.ForeignKey(ContentItem, on_delete=models.PROTECT, related_name="sample_memberships")
    stratum = models.CharField(max_length=200, blank=True)
    inclusion_probability = models.FloatField()

    class Meta:
        ordering = ["sample", "id"]
        constraints = [
            models.UniqueConstraint(fields=["sample", "item"], name="sample_member_once"),
            models.CheckConstraint(condition=Q(inclusion_probability__gt=0) & Q(inclusion_probability__lte=1),
                                   name="sample_member_probability_range"),
        ]

    def __str__(self) -> str:
        return f"{self.sample}: {self.item} (π={self.inclusion_probability:.4g})"
