"""Prevalence estimates: a policy label's share in a sampled population, with its confidence
interval, computed from a labeling run's routed human labels (and, for PPI, its LLM labels) on a
probability sample. Write-once: ``save``/``delete``, the QuerySet, the admin and database
triggers (migration 0002, see ``touchstone.immutability``) refuse every change."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from touchstone.errors import ImmutableObject

ANY_VIOLATION = "any violation"  # the label of "any violating label"


class Estimator(models.TextChoices):
    HT = "ht", "Horvitz–Thompson"
    HAJEK = "hajek", "Hájek"
    STRATIFIED = "stratified", "Stratified (two-phase)"
    PPI = "ppi", "PPI (λ = 1)"
    PPI_PLUS = "ppi++", "PPI++ (tuned λ)"
    STRATIFIED_PPI = "stratified-ppi", "Stratified PPI++"


class PrevalenceEstimateQuerySet(models.QuerySet):
    """Estimates are write-once: created by ``prevalence_estimate_create``, never changed or deleted."""

    def update(self, **kwargs: Any) -> int:
        raise ImmutableObject("Prevalence estimates are immutable and cannot be changed.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise ImmutableObject("Prevalence estimates are immutable and cannot be deleted.")

    def bulk_update(self, objs: Iterable[Any], *args: Any, **kwargs: Any) -> int:
        raise ImmutableObject("Prevalence estimates are immutable and cannot be changed.")


class PrevalenceEstimate(models.Model):
    """One estimator's prevalence of one label (or of any violation) under a policy version, from
    a labeling run on a sample. ``ci_low``/``ci_high`` are the Wald interval at level 1 − alpha;
    ``ci_wilson_*`` the Wilson interval at Kish's effective n (design-based estimators only);
    ``convention`` says which. PPI estimates store the classical (human-only) estimate on the same
    human-labelled items beside them. The derivation is in ``prevalence.estimators``."""

    policy_version = models.ForeignKey("policies.PolicyVersion", on_delete=models.PROTECT, related_name="+")
    label = models.CharField(max_length=63, help_text=f"A taxonomy label, or {ANY_VIOLATION!r}.")
    sample = models.ForeignKey("content.Sample", on_delete=models.PROTECT, related_name="+")
    run = models.ForeignKey("runs.LabelingRun", on_delete=models.PROTECT, related_name="+")
    estimator = models.CharField(max_length=16, choices=Estimator.choices)
    estimate = models.FloatField()
    se = models.FloatField(null=True, blank=True)
    ci_low = models.FloatField(null=True, blank=True)
    ci_high = models.FloatField(null=True, blank=True)
    ci_wilson_low = models.FloatField(null=True, blank=True)
    ci_wilson_high = models.FloatField(null=True, blank=True)
    convention = models.CharField(max_length=200)
    alpha = models.FloatField()
    n_human = models.PositiveIntegerField(help_text="Items labelled by people that entered the estimate.")
    n_llm = models.PositiveIntegerField(help_text="Items whose LLM label entered the estimate.")
    n_pending = models.PositiveIntegerField(default=0, help_text="Items without a label yet, treated as missing "
                                                                 "at random within their stratum.")
    effective_n = models.FloatField(null=True, blank=True)
    lam = models.FloatField(null=True, blank=True, help_text="PPI's λ (ppi, ppi++).")
    classical_estimate = models.FloatField(null=True, blank=True)
    classical_se = models.FloatField(null=True, blank=True)
    classical_ci_low = models.FloatField(null=True, blank=True)
    classical_ci_high = models.FloatField(null=True, blank=True)
    strata = models.JSONField(default=list, help_text="Per sample stratum and routing group.")
    design = models.JSONField(default=dict, help_text="How the sample was drawn and the run routed.")
    golden_set_version = models.ForeignKey("goldsets.GoldenSetVersion", null=True, blank=True,
                                           on_delete=models.PROTECT, related_name="+")
    agreement = models.JSONField(default=dict, help_text="LLM vs people on the audited items (and vs the golden "
                                                         "set when one is given), Wilson CIs.")
    simulated = models.BooleanField(default=False, help_text="A voter of the run is the simulator.")
    code_version = models.JSONField(help_text="touchstone's package version and git commit (or why none)")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PrevalenceEstimateQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["policy_version", "label", "estimator"])]
        constraints = [
            models.CheckConstraint(condition=Q(alpha__gt=0) & Q(alpha__lt=1), name="prevalence_alpha_range"),
        ]

    def __str__(self) -> str:
        return f"prevalence estimate #{self.pk}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and type(self).objects.filter(pk=self.pk).exists():
            raise ImmutableObject(f"Prevalence estimate #{self.pk} is immutable and cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ImmutableObject(f"Prevalence estimate #{self.pk} is immutable and cannot be deleted.")
