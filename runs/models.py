"""LLM endpoints, labeling runs and their voters, batches, judgements, calls and item decisions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from content.models import ContentItem, Sample


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
