"""Content items and their images; samples and their members.

Runs, judgements and review queues join them in later steps.
"""

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
    frame_size = models.PositiveIntegerField()
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


class LLMEndpoint(models.Model):
    """An OpenAI-compatible endpoint. The API key stays in the environment, named here."""

    name = models.SlugField(max_length=80, unique=True)
    base_url = models.URLField(max_length=500)
    api_key_env = models.CharField(max_length=100, default="OPENAI_API_KEY",
                                   help_text="Name of the environment variable holding the key (never the key).")
    max_concurrency = models.PositiveIntegerField(
        default=16, help_text="Requests in flight at once per worker process: the endpoint sees up to "
                              "(llm worker processes) × this.")
    requests_per_minute = models.PositiveIntegerField(default=600)
    tokens_per_minute = models.PositiveBigIntegerField(default=1_000_000)
    price_input_per_million = models.DecimalField(max_digits=10, decimal_places=4, default=0)
    price_cached_input_per_million = models.DecimalField(max_digits=10, decimal_places=4, default=0)
    price_output_per_million = models.DecimalField(max_digits=10, decimal_places=4, default=0)
    timeout_seconds = models.FloatField(default=60)
    is_simulator = models.BooleanField(default=False, help_text="Answers are simulated, never a real model's.")
    supports_batch = models.BooleanField(default=False, help_text="Offers the OpenAI Batch API.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} (SIMULATOR)" if self.is_simulator else self.name


class RunStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    FINISHED = "finished", "Finished"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


class LabelingRun(models.Model):
    """A sample labelled with a prompt version by one or more voters, with routing rules."""

    name = models.CharField(max_length=200, unique=True)
    sample = models.ForeignKey(Sample, on_delete=models.PROTECT, related_name="runs")
    prompt_version = models.ForeignKey("policies.PromptVersion", on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.DRAFT, db_index=True)
    status_detail = models.CharField(max_length=500, blank=True, help_text="Why it waits, or why it failed.")
    confidence_threshold = models.FloatField(default=0.7)
    audit_share = models.FloatField(default=0.05, help_text="Share of would-be auto-accepted items sent to humans.")
    audit_seed = models.BigIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=4, help_text="Per judgement, transient errors and "
                                                                          "invalid output together.")
    chunk_size = models.PositiveIntegerField(default=100)
    executor = models.CharField(max_length=8, choices=[("realtime", "Real time (chat completions)"),
                                                       ("batch", "OpenAI Batch API")], default="realtime")
    estimated_input_tokens = models.BigIntegerField(default=0)
    estimated_output_tokens = models.BigIntegerField(default=0)
    estimated_cost = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last progress written by a worker.")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(audit_share__gte=0) & Q(audit_share__lte=1), name="run_audit_share"),
            models.CheckConstraint(condition=Q(confidence_threshold__gte=0) & Q(confidence_threshold__lte=1),
                                   name="run_confidence_threshold"),
        ]

    def __str__(self) -> str:
        return self.name


class RunVoter(models.Model):
    run = models.ForeignKey(LabelingRun, on_delete=models.CASCADE, related_name="voters")
    position = models.PositiveSmallIntegerField()
    endpoint = models.ForeignKey(LLMEndpoint, on_delete=models.PROTECT, related_name="voters")
    model = models.CharField(max_length=120)
    temperature = models.FloatField(default=0.0)
    seed = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["run", "position"]
        constraints = [models.UniqueConstraint(fields=["run", "position"], name="run_voter_position")]

    def __str__(self) -> str:
        return f"voter {self.position}: {self.model}@{self.endpoint.name}"


class LLMBatchStatus(models.TextChoices):
    SUBMITTING = "submitting"
    SUBMITTED = "submitted", "Submitted (waiting for the provider)"
    INGESTED = "ingested", "Results stored"
    FAILED = "failed"
    CANCELLED = "cancelled"


class LLMBatch(models.Model):
    """One Batch API batch of a run: the (item, voter) pairs of a chunk on one endpoint."""

    run = models.ForeignKey("LabelingRun", on_delete=models.CASCADE, related_name="batches")
    endpoint = models.ForeignKey(LLMEndpoint, on_delete=models.PROTECT, related_name="+")
    chunk_key = models.CharField(max_length=80,
                                 help_text="sha256 of the endpoint and the pairs (+ a resubmission count).")
    pairs = models.JSONField(help_text="The [item id, voter id] pairs it judges.")
    request_count = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=12, choices=LLMBatchStatus.choices, default=LLMBatchStatus.SUBMITTING)
    remote_status = models.CharField(max_length=20, blank=True)
    remote_batch_id = models.CharField(max_length=100, blank=True)
    input_file_id = models.CharField(max_length=100, blank=True)
    output_file_id = models.CharField(max_length=100, blank=True)
    error_file_id = models.CharField(max_length=100, blank=True)
    polls = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["run", "created_at"]
        constraints = [models.UniqueConstraint(fields=["run", "chunk_key"], name="llm_batch_chunk_once")]

    def __str__(self) -> str:
        return f"{self.run} batch {self.remote_batch_id or self.pk} ({self.status})"


class JudgementStatus(models.TextChoices):
    OK = "ok", "OK"
    FAILED = "failed", "Failed"


class Judgement(models.Model):
    """One voter's answer on one item in one run: stored exactly once."""

    run = models.ForeignKey(LabelingRun, on_delete=models.CASCADE, related_name="judgements")
    item = models.ForeignKey(ContentItem, on_delete=models.PROTECT, related_name="judgements")
    voter = models.ForeignKey(RunVoter, on_delete=models.PROTECT, related_name="judgements")
    status = models.CharField(max_length=8, choices=JudgementStatus.choices)
    label = models.CharField(max_length=63, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    rationale = models.TextField(blank=True)
    violated_rule_ids = models.JSONField(default=list, blank=True)
    raw_response = models.TextField(blank=True)
    error = models.TextField(blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=1)
    cost = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    simulated = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "item", "voter"]
        constraints = [models.UniqueConstraint(fields=["run", "item", "voter"], name="judgement_once")]
        indexes = [models.Index(fields=["run", "status"])]

    def __str__(self) -> str:
        return f"{self.run} {self.item} {self.voter.position}: {self.label or self.status}"


class LLMCall(models.Model):
    """The ledger: every request sent, including retries, with tokens and cost."""

    run = models.ForeignKey(LabelingRun, on_delete=models.CASCADE, related_name="calls")
    item = models.ForeignKey(ContentItem, on_delete=models.PROTECT, related_name="+")
    voter = models.ForeignKey(RunVoter, on_delete=models.PROTECT, related_name="+")
    attempt = models.PositiveSmallIntegerField()
    outcome = models.CharField(max_length=32)
    input_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["run", "outcome"])]

    def __str__(self) -> str:
        return f"{self.run} {self.item_id}/{self.voter_id} attempt {self.attempt}: {self.outcome}"


class DecisionOutcome(models.TextChoices):
    AUTO_ACCEPTED = "auto_accepted", "Auto-accepted"
    HUMAN_REVIEW = "human_review", "Human review"
    FAILED = "failed", "Failed"


class RoutingReason(models.TextChoices):
    AGREED = "agreed", "Voters agree with enough confidence"
    DISAGREEMENT = "disagreement", "Voters disagree"
    LOW_CONFIDENCE = "low_confidence", "Confidence below threshold"
    AUDIT = "audit", "Random audit share"
    ALWAYS_REVIEW = "always_review_label", "Label always reviewed by humans"
    FAILED = "failed", "A voter failed"


class ItemDecision(models.Model):
    run = models.ForeignKey(LabelingRun, on_delete=models.CASCADE, related_name="decisions")
    item = models.ForeignKey(ContentItem, on_delete=models.PROTECT, related_name="decisions")
    outcome = models.CharField(max_length=16, choices=DecisionOutcome.choices)
    reason = models.CharField(max_length=24, choices=RoutingReason.choices)
    label = models.CharField(max_length=63, blank=True, help_text="The voters' majority label, if any.")
    confidence = models.FloatField(null=True, blank=True)
    votes = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "item"]
        constraints = [models.UniqueConstraint(fields=["run", "item"], name="item_decision_once")]
        indexes = [models.Index(fields=["run", "outcome"])]

    def __str__(self) -> str:
        return f"{self.run} {self.item}: {self.outcome} ({self.reason})"


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
