"""Human review: vendors, labelers, label imports, review queues and tasks, human labels, hidden gold."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from content.models import ContentItem, ImportJob


class Vendor(models.Model):
    """A labeling vendor (a BPO, an in-house team, an expert pool)."""

    name = models.CharField(max_length=100, unique=True)
    is_expert = models.BooleanField(default=False, help_text="Works adjudication queues.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Labeler(models.Model):
    """A person at a vendor, known by the vendor's id for them."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        PAUSED = "paused"

    vendor = models.ForeignKey(Vendor, on_delete=models.PROTECT, related_name="labelers")
    external_id = models.CharField(max_length=150)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    ls_user_id = models.PositiveIntegerField(null=True, blank=True, unique=True,
                                             help_text="The Label Studio user who is this labeler.")
    paused_at = models.DateTimeField(null=True, blank=True, help_text="Labels made after this do not count.")
    flagged_at = models.DateTimeField(null=True, blank=True)
    flag_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["vendor", "external_id"]
        constraints = [models.UniqueConstraint(fields=["vendor", "external_id"], name="labeler_vendor_external_id")]

    def __str__(self) -> str:
        return f"{self.external_id} ({self.vendor})"


class LabelImport(ImportJob):
    """One run of ``labels import``."""

    policy_version = models.ForeignKey("policies.PolicyVersion", on_delete=models.PROTECT, related_name="+")
    content_source = models.CharField(max_length=100, blank=True)

    class Meta(ImportJob.Meta):
        pass

    def __str__(self) -> str:
        return f"label import #{self.pk} ← {self.path}"


class ReviewQueuePurpose(models.TextChoices):
    REVIEW = "review"
    ADJUDICATION = "adjudication"


class ReviewQueue(models.Model):
    """A queue of items for one vendor under one policy version: one Label Studio project."""

    name = models.SlugField(max_length=80, unique=True)
    policy_version = models.ForeignKey("policies.PolicyVersion", on_delete=models.PROTECT, related_name="+")
    vendor = models.ForeignKey(Vendor, on_delete=models.PROTECT, related_name="queues")
    purpose = models.CharField(max_length=16, choices=ReviewQueuePurpose.choices, default=ReviewQueuePurpose.REVIEW)
    overlap = models.PositiveSmallIntegerField(default=2, help_text="Labels from different labelers per item (k).")
    gold_share = models.FloatField(default=0.0, help_text="Share of hidden gold items mixed in.")
    show_llm_suggestions = models.BooleanField(default=False, help_text="Off by default: suggestions anchor.")
    image_slots = models.PositiveSmallIntegerField(default=0, help_text="Images shown per task (0 to 4).")
    parts = models.JSONField(default=list, blank=True,
                             help_text="The text parts its tasks show, in order; empty: every allowed part.")
    adjudication_queue = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT,
                                           related_name="feeders",
                                           help_text="Where items go when their k labels disagree.")
    disagreement_rule = models.CharField(
        max_length=24, default="no_majority",
        choices=[("no_majority", "No strict majority"),
                 ("any_violating_dissent", "Any dissent when a label is a violation")])
    ls_project_id = models.PositiveIntegerField(null=True, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    status_detail = models.CharField(max_length=500, blank=True, help_text="The last problem, while it lasts.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.CheckConstraint(condition=Q(overlap__gte=1), name="review_queue_overlap_positive"),
                       models.CheckConstraint(condition=Q(gold_share__gte=0) & Q(gold_share__lte=1),
                                              name="review_queue_gold_share")]

    def __str__(self) -> str:
        return self.name


class ReviewTaskStatus(models.TextChoices):
    NEW = "new", "Not yet in Label Studio"
    IMPORTING = "importing", "Being imported"
    OPEN = "open", "Waiting for labels"
    COMPLETE = "complete", "Has its k labels"


class ReviewTask(models.Model):
    """One item in one queue, and the Label Studio task that shows it (exactly one)."""

    queue = models.ForeignKey(ReviewQueue, on_delete=models.CASCADE, related_name="tasks")
    item = models.ForeignKey(ContentItem, on_delete=models.PROTECT, related_name="review_tasks")
    status = models.CharField(max_length=12, choices=ReviewTaskStatus.choices, default=ReviewTaskStatus.NEW)
    ls_task_id = models.PositiveIntegerField(null=True, blank=True)
    labels = models.PositiveSmallIntegerField(default=0, help_text="Valid labels from distinct labelers.")
    is_gold = models.BooleanField(default=False, help_text="A hidden gold item mixed in to score labelers.")
    extra_slots = models.PositiveSmallIntegerField(
        default=0, help_text="Slots opened in Label Studio for annotations that do not count.")
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["queue", "pk"]
        constraints = [models.UniqueConstraint(fields=["queue", "item"], name="review_task_once"),
                       models.UniqueConstraint(fields=["queue", "ls_task_id"], name="review_task_ls_task_once")]
        indexes = [models.Index(fields=["queue", "status"])]

    def __str__(self) -> str:
        return f"{self.queue}: {self.item}"


class HumanLabelRole(models.TextChoices):
    REVIEW = "review"
    ADJUDICATION = "adjudication", "Adjudication (final)"


class HumanLabel(models.Model):
    """One person's label for one item under one policy version, from Label Studio or an import.

    A label outside the taxonomy is kept with ``is_valid`` false and the reason, never mapped.
    """

    item = models.ForeignKey(ContentItem, on_delete=models.PROTECT, related_name="human_labels")
    policy_version = models.ForeignKey("policies.PolicyVersion", on_delete=models.PROTECT,
                                       related_name="human_labels")
    labeler = models.ForeignKey(Labeler, on_delete=models.PROTECT, related_name="labels")
    role = models.CharField(max_length=16, choices=HumanLabelRole.choices, default=HumanLabelRole.REVIEW)
    source = models.CharField(max_length=100, help_text="'import' or 'label_studio'.")
    label_import = models.ForeignKey(LabelImport, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="labels")
    queue = models.ForeignKey(ReviewQueue, null=True, blank=True, on_delete=models.PROTECT, related_name="labels")
    external_ref = models.CharField(max_length=64, blank=True, help_text="The Label Studio annotation id.")
    label = models.CharField(max_length=63)
    is_valid = models.BooleanField(default=True)
    invalid_reason = models.CharField(max_length=300, blank=True)
    rule_ids = models.JSONField(default=list, blank=True)
    rationale = models.TextField(blank=True)
    seconds_spent = models.FloatField(null=True, blank=True)
    labeled_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["item", "labeler"]
        constraints = [
            models.UniqueConstraint(fields=["policy_version", "item", "labeler", "role"], name="human_label_once"),
        ]
        indexes = [models.Index(fields=["policy_version", "item"])]

    def __str__(self) -> str:
        return f"{self.labeler}: {self.item} = {self.label}"


class HiddenGoldItem(models.Model):
    """An item whose label is known, mixed into vendor queues to measure labelers. Labelers
    cannot tell it from the rest: its task carries the same data as any other."""

    class Origin(models.TextChoices):
        GOLDEN_SET = "golden_set", "A frozen golden set"
        ADMIN = "admin", "Marked by an admin"

    policy_version = models.ForeignKey("policies.PolicyVersion", on_delete=models.PROTECT, related_name="+")
    item = models.ForeignKey(ContentItem, on_delete=models.PROTECT, related_name="+")
    label = models.CharField(max_length=63)
    origin = models.CharField(max_length=16, choices=Origin.choices)
    origin_detail = models.CharField(max_length=200, blank=True, help_text="e.g. the golden set version.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["policy_version", "item"]
        constraints = [models.UniqueConstraint(fields=["policy_version", "item"], name="hidden_gold_once")]

    def __str__(self) -> str:
        return f"{self.item} = {self.label} ({self.policy_version})"
