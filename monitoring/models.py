"""Monitors (a scheduled measurement of one policy), their cycles (one per partition date) with
the runs and estimates each made, and the alerts their rules raised.

A cycle moves pending → drawing → labeling → reviewing → estimating → done; ``waiting`` (with
``reason``) while something outside holds it (an LLM endpoint down, Label Studio down, human
labels not in yet), and ``failed`` (with ``reason``) when it cannot succeed. ``stage`` keeps the
stage a waiting cycle resumes. Transitions happen only in ``monitoring.services``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Cadence(models.TextChoices):
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"


class Monitor(models.Model):
    name = models.SlugField(max_length=60, unique=True)
    policy = models.ForeignKey("policies.Policy", on_delete=models.PROTECT, related_name="+")
    spec = models.JSONField(help_text="The validated monitor document (monitoring.schema), defaults filled in.")
    cadence = models.CharField(max_length=8, choices=Cadence.choices, default=Cadence.DAILY)
    start_date = models.DateField(help_text="The first partition date.")
    review_queue = models.ForeignKey("review.ReviewQueue", null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+", help_text="Where the audit share goes.")
    is_paused = models.BooleanField(default=False)
    source_path = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                   help_text="Cycles act as this user (draw, label, estimate).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def alert_rules(self) -> list[dict]:
        return list(self.spec.get("alerts", []))


class CycleState(models.TextChoices):
    PENDING = "pending", "Pending"
    DRAWING = "drawing", "Drawing the sample"
    LABELING = "labeling", "LLM labeling"
    REVIEWING = "reviewing", "Waiting for the audit labels"
    ESTIMATING = "estimating", "Estimating"
    DONE = "done", "Done"
    WAITING = "waiting", "Waiting"
    FAILED = "failed", "Failed"


ACTIVE_STATES = (CycleState.PENDING, CycleState.DRAWING, CycleState.LABELING, CycleState.REVIEWING,
                 CycleState.ESTIMATING, CycleState.WAITING)


class Cycle(models.Model):
    monitor = models.ForeignKey(Monitor, on_delete=models.PROTECT, related_name="cycles")
    partition_date = models.DateField()
    state = models.CharField(max_length=12, choices=CycleState.choices, default=CycleState.PENDING, db_index=True)
    stage = models.CharField(max_length=12, choices=CycleState.choices, default=CycleState.DRAWING,
                             help_text="The stage being worked (a waiting cycle resumes it).")
    reason = models.CharField(max_length=500, blank=True, help_text="Why it waits, or why it failed.")
    waiting_since = models.DateTimeField(null=True, blank=True)
    is_backfill = models.BooleanField(default=False)
    seed = models.BigIntegerField(help_text="The draw's seed, from the monitor's seed and the partition date.")
    sample = models.ForeignKey("content.Sample", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    label_deadline_at = models.DateTimeField(null=True, blank=True)
    audit_items = models.PositiveIntegerField(default=0, help_text="Items routed to people (all runs).")
    labels_in = models.PositiveIntegerField(default=0, help_text="Of those, items with a final human label.")
    estimated_with_pending = models.BooleanField(default=False, help_text="The label deadline passed first.")
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    drawn_at = models.DateTimeField(null=True, blank=True)
    labeled_at = models.DateTimeField(null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    estimated_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The claim: a worker holds the cycle until lease_until; a killed worker's lease runs out.
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="When its next advance is due.")
    advances = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["monitor", "-partition_date"]
        constraints = [models.UniqueConstraint(fields=["monitor", "partition_date"], name="cycle_once_per_partition")]
        indexes = [models.Index(fields=["state", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.monitor.name} {self.partition_date:%Y-%m-%d}"

    @property
    def shown_state(self) -> str:
        if self.state in (CycleState.WAITING, CycleState.FAILED) and self.reason:
            return f"{self.state} ({self.stage}): {self.reason}"
        return self.state


class CycleRun(models.Model):
    """One labeling run of a cycle's sample under one policy version: one per cycle, two during
    a prompt change's overlap window (the same sample labelled with both versions)."""

    cycle = models.ForeignKey(Cycle, on_delete=models.CASCADE, related_name="cycle_runs")
    policy_version = models.ForeignKey("policies.PolicyVersion", on_delete=models.PROTECT, related_name="+")
    prompt_version = models.ForeignKey("policies.PromptVersion", on_delete=models.PROTECT, related_name="+")
    is_primary = models.BooleanField(default=True, help_text="The published version's run (the series' line).")
    run = models.ForeignKey("runs.LabelingRun", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    pushed_at = models.DateTimeField(null=True, blank=True, help_text="Its routed items went to review.")
    estimated_at = models.DateTimeField(null=True, blank=True)
    estimates = models.ManyToManyField("prevalence.PrevalenceEstimate", blank=True, related_name="+")
    agreement = models.JSONField(default=dict, blank=True,
                                 help_text="LLM vs people on the audited items (any violation): n, agreement, ci.")

    class Meta:
        ordering = ["cycle", "-is_primary", "policy_version"]
        constraints = [models.UniqueConstraint(fields=["cycle", "policy_version"], name="cycle_run_once_per_version"),
                       models.UniqueConstraint(fields=["cycle"], condition=Q(is_primary=True),
                                               name="cycle_one_primary_run")]

    def __str__(self) -> str:
        return f"{self.cycle} · {self.policy_version}"


class AlertStatus(models.TextChoices):
    PENDING = "pending", "Not sent yet"
    SENDING = "sending", "Being sent"
    SENT = "sent", "Delivered"
    FAILED = "failed", "Delivery failed (retrying)"
    GAVE_UP = "gave_up", "Delivery given up"
    NOT_SENT = "not_sent", "No webhook configured"


class Alert(models.Model):
    """A rule that fired on a cycle: exactly one per (cycle, rule); delivery and acknowledgement
    fields are for the webhook sender and the pages."""

    monitor = models.ForeignKey(Monitor, on_delete=models.PROTECT, related_name="alerts")
    cycle = models.ForeignKey(Cycle, on_delete=models.PROTECT, related_name="alerts")
    rule = models.CharField(max_length=60, help_text="The rule's name in the monitor.")
    kind = models.CharField(max_length=32)
    label = models.CharField(max_length=63, blank=True)
    value = models.FloatField()
    threshold = models.FloatField()
    message = models.CharField(max_length=500)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=10, choices=AlertStatus.choices, default=AlertStatus.PENDING,
                              db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=1000, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                        related_name="+")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledge_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["cycle", "rule"], name="alert_once_per_cycle_rule")]

    def __str__(self) -> str:
        return f"{self.rule} on {self.cycle}"


from monitoring.references import MonitorReference  # noqa: E402,F401  (the reference series' model)
