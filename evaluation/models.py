"""Signals (named outputs about content under a policy), their versions and their scores, and
the imports that brought scores in.

Immutability:
- a signal's name, kind, policy, output type and score label never change once created
  (its description and owner may);
- a signal version's metadata never changes, and the version is never deleted, once it has
  scores;
- scores are write-once rows: inserted, never updated or deleted. More scores may be appended
  to a version later (another import batch, a run that finished again after a retry), but a
  version never has two scores for one item.
Enforced in ``save()``/``delete()``, against ``QuerySet.update()``/``delete()``/``bulk_update()``,
in the admin, and by database triggers (migration 0002, see ``touchstone.immutability``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from content.models import ImportJob
from touchstone.errors import ImmutableObject

VIOLATING = "violating"  # the score label of "violating vs not": any label marked as a violation


class SignalKind(models.TextChoices):
    LLM_LABELING = "llm_labeling", "LLM labeling (prompt version × models × voting rule)"
    PRODUCTION_CLASSIFIER = "production_classifier", "Production classifier"
    RULE = "rule", "Rule"


class SignalOutputType(models.TextChoices):
    LABEL = "label", "Label from the policy's taxonomy"
    SCORE = "score", "Score in [0, 1]"


# Columns of a signal fixed at creation: what its scores mean.
SIGNAL_FIXED_FIELDS = ("name", "kind", "policy", "output_type", "score_label")


class SignalQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        fixed = sorted(set(kwargs) & {*SIGNAL_FIXED_FIELDS, *(f"{f}_id" for f in SIGNAL_FIXED_FIELDS)})
        if fixed:
            raise ImmutableObject(f"A signal's {', '.join(fixed)} cannot change; create a new signal.")
        return super().update(**kwargs)

    def bulk_update(self, objs: Iterable[Any], fields: Iterable[str], *args: Any, **kwargs: Any) -> int:
        fields = list(fields)
        fixed = sorted(set(fields) & set(SIGNAL_FIXED_FIELDS))
        if fixed:
            raise ImmutableObject(f"A signal's {', '.join(fixed)} cannot change; create a new signal.")
        return super().bulk_update(objs, fields, *args, **kwargs)


class Signal(models.Model):
    """A named output that says something about content under a policy. ``output_type`` label:
    each score row gives a label of the policy's taxonomy (and may give the signal's confidence
    in it as ``score``); score: each row gives a score in [0, 1] for ``score_label`` (``violating``
    or one label key)."""

    name = models.SlugField(max_length=100, unique=True, help_text="Unique and stable: it never changes.")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="owned_signals")
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=24, choices=SignalKind.choices)
    policy = models.ForeignKey("policies.Policy", on_delete=models.PROTECT, related_name="signals")
    output_type = models.CharField(max_length=8, choices=SignalOutputType.choices)
    score_label = models.CharField(
        max_length=63, blank=True,
        help_text=f"Score signals: what the score is the probability of: {VIOLATING!r} or one label key.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = SignalQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(output_type="score") & ~Q(score_label="")) | (Q(output_type="label") & Q(score_label="")),
                name="signal_score_label_iff_score_output"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            stored = type(self).objects.filter(pk=self.pk).values(*(f.attname for f in self._fixed_fields())).first()
            if stored is not None:
                changed = [f.name for f in self._fixed_fields() if stored[f.attname] != getattr(self, f.attname)]
                if changed:
                    raise ImmutableObject(f"Signal {stored['name']}: {', '.join(changed)} cannot change; "
                                          "create a new signal.")
        super().save(*args, **kwargs)

    @classmethod
    def _fixed_fields(cls) -> list[models.Field]:
        return [cls._meta.get_field(name) for name in SIGNAL_FIXED_FIELDS]


class SignalVersionQuerySet(models.QuerySet):
    """Refuses bulk changes that would touch a version with scores."""

    def _refuse_if_scored(self, verb: str) -> None:
        if self.filter(scores__isnull=False).exists():
            raise ImmutableObject(f"A signal version with scores cannot be {verb}.")

    def update(self, **kwargs: Any) -> int:
        self._refuse_if_scored("changed")
        return super().update(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        self._refuse_if_scored("deleted")
        return super().delete()

    def bulk_update(self, objs: Iterable[Any], *args: Any, **kwargs: Any) -> int:
        objs = list(objs)
        self.filter(pk__in=[obj.pk for obj in objs])._refuse_if_scored("changed")
        return super().bulk_update(objs, *args, **kwargs)


class SignalVersion(models.Model):
    """One version of a signal (a new model, prompt or rule set). Its labels are keys of
    ``policy_version``'s taxonomy. Immutable once it has scores."""

    signal = models.ForeignKey(Signal, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    policy_version = models.ForeignKey(
        "policies.PolicyVersion", on_delete=models.PROTECT, related_name="+",
        help_text="The policy version whose taxonomy the scores' labels come from.")
    notes = models.TextField(blank=True, help_text="Version notes: what changed.")
    model_card_url = models.URLField(max_length=500, blank=True)
    commit = models.CharField(max_length=100, blank=True, help_text="The code or model commit it was built from.")
    labeling_run = models.OneToOneField(
        "runs.LabelingRun", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="The labeling run whose decisions are this version's scores.")
    prompt_version = models.ForeignKey("policies.PromptVersion", null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = SignalVersionQuerySet.as_manager()

    class Meta:
        ordering = ["signal", "-number"]
        constraints = [models.UniqueConstraint(fields=["signal", "number"], name="signal_version_number")]

    def __str__(self) -> str:
        return f"{self.signal.name}@{self.number}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.has_scores():
            raise ImmutableObject(f"Signal version {self} has scores and cannot be changed; create a new version.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        if self.has_scores():
            raise ImmutableObject(f"Signal version {self} has scores and cannot be deleted.")
        return super().delete(*args, **kwargs)

    def has_scores(self) -> bool:
        return self.pk is not None and SignalScore.objects.filter(version_id=self.pk).exists()


class SignalScoreQuerySet(models.QuerySet):
    """Scores are write-once: appended with ``bulk_create``/``create``, never changed or deleted."""

    def update(self, **kwargs: Any) -> int:
        raise ImmutableObject("Signal scores are write-once and cannot be changed.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise ImmutableObject("Signal scores are write-once and cannot be deleted.")

    def bulk_update(self, objs: Iterable[Any], *args: Any, **kwargs: Any) -> int:
        raise ImmutableObject("Signal scores are write-once and cannot be changed.")


class SignalScore(models.Model):
    """What one signal version said about one item: a score in [0, 1] and/or a label."""

    # No index of its own: the (version, item) constraint's index starts with it.
    version = models.ForeignKey(SignalVersion, on_delete=models.PROTECT, related_name="scores", db_index=False)
    item = models.ForeignKey("content.ContentItem", on_delete=models.PROTECT, related_name="+")
    score = models.FloatField(null=True, blank=True)
    label = models.CharField(max_length=63, blank=True)
    observed_at = models.DateTimeField(null=True, blank=True, help_text="When the signal produced it.")

    objects = SignalScoreQuerySet.as_manager()

    class Meta:
        ordering = ["version", "item"]
        constraints = [
            models.UniqueConstraint(fields=["version", "item"], name="signal_score_once"),
            models.CheckConstraint(condition=Q(score__isnull=True) | (Q(score__gte=0) & Q(score__lte=1)),
                                   name="signal_score_in_unit_interval"),
            models.CheckConstraint(condition=Q(score__isnull=False) | ~Q(label=""), name="signal_score_says_something"),
        ]

    def __str__(self) -> str:
        return f"{self.version_id}/{self.item_id}: {self.label or self.score}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and type(self).objects.filter(pk=self.pk).exists():
            raise ImmutableObject("Signal scores are write-once and cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ImmutableObject("Signal scores are write-once and cannot be deleted.")


class SignalScoreImport(ImportJob):
    """One ``signal import`` of a file, or one batch posted to the API (path ``api``)."""

    version = models.ForeignKey(SignalVersion, on_delete=models.PROTECT, related_name="imports")
    unknown = models.PositiveIntegerField(default=0, help_text="Rows naming an item that does not exist.")
    unknown_items = models.JSONField(default=list, blank=True, help_text="The first unknown items: source, id, line.")

    class Meta(ImportJob.Meta):
        pass

    def __str__(self) -> str:
        return f"score import #{self.pk} {self.version_id} ← {self.path}"


class EvaluationQuerySet(models.QuerySet):
    """Evaluations are write-once: created by ``evaluation_create``, never changed or deleted."""

    def update(self, **kwargs: Any) -> int:
        raise ImmutableObject("Evaluations are immutable and cannot be changed.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise ImmutableObject("Evaluations are immutable and cannot be deleted.")

    def bulk_update(self, objs: Iterable[Any], *args: Any, **kwargs: Any) -> int:
        raise ImmutableObject("Evaluations are immutable and cannot be changed.")


class Evaluation(models.Model):
    """A signal version measured against a frozen golden-set version, stored so that it can be
    reproduced and cited: the inputs (versions, the golden set's digest, the options, the scores
    used up to ``max_score_id``), the code version, and the results ``document`` (see
    ``evaluation.metrics``). Immutable once stored (``save``/``delete``, the QuerySet, the admin
    and database triggers, migration 0004)."""

    signal_version = models.ForeignKey(SignalVersion, on_delete=models.PROTECT, related_name="evaluations")
    golden_set_version = models.ForeignKey("goldsets.GoldenSetVersion", on_delete=models.PROTECT, related_name="+")
    golden_set_digest = models.CharField(max_length=64)
    options = models.JSONField(help_text="threshold | target_precision | max_fpr, slice_by, violating_labels, "
                                         "bootstrap resamples and seed")
    code_version = models.JSONField(help_text="touchstone's package version and git commit (or why none)")
    score_count = models.PositiveIntegerField(help_text="The version's scores used: those with id <= max_score_id.")
    max_score_id = models.BigIntegerField(null=True, blank=True)
    document = models.JSONField(help_text="The results (see evaluation.metrics).")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = EvaluationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"evaluation #{self.pk}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and type(self).objects.filter(pk=self.pk).exists():
            raise ImmutableObject(f"Evaluation #{self.pk} is immutable and cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ImmutableObject(f"Evaluation #{self.pk} is immutable and cannot be deleted.")


class ComparisonQuerySet(models.QuerySet):
    """Comparisons are write-once: created by ``comparison_create``, never changed or deleted."""

    def update(self, **kwargs: Any) -> int:
        raise ImmutableObject("Comparisons are immutable and cannot be changed.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise ImmutableObject("Comparisons are immutable and cannot be deleted.")

    def bulk_update(self, objs: Iterable[Any], *args: Any, **kwargs: Any) -> int:
        raise ImmutableObject("Comparisons are immutable and cannot be changed.")


class Comparison(models.Model):
    """Two signal versions (A, the old; B, the new) measured on the same items of a frozen
    golden-set version, paired, stored so that it can be reproduced and cited: the inputs
    (versions, the golden set's digest, the options, each version's scores used up to its
    ``max_score_id``), the code version and the results ``document`` (see
    ``evaluation.comparison``). Immutable once stored (``save``/``delete``, the QuerySet, the
    admin and database triggers, migration 0006)."""

    signal_version_a = models.ForeignKey(SignalVersion, on_delete=models.PROTECT, related_name="comparisons_as_a")
    signal_version_b = models.ForeignKey(SignalVersion, on_delete=models.PROTECT, related_name="comparisons_as_b")
    golden_set_version = models.ForeignKey("goldsets.GoldenSetVersion", on_delete=models.PROTECT, related_name="+")
    golden_set_digest = models.CharField(max_length=64)
    options = models.JSONField(help_text="threshold | target_precision | max_fpr, slice_by, bootstrap resamples "
                                         "and seed")
    code_version = models.JSONField(help_text="touchstone's package version and git commit (or why none)")
    score_count_a = models.PositiveIntegerField(help_text="A's scores used: those with id <= max_score_id_a.")
    max_score_id_a = models.BigIntegerField(null=True, blank=True)
    score_count_b = models.PositiveIntegerField(help_text="B's scores used: those with id <= max_score_id_b.")
    max_score_id_b = models.BigIntegerField(null=True, blank=True)
    document = models.JSONField(help_text="The results (see evaluation.comparison).")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ComparisonQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"comparison #{self.pk}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and type(self).objects.filter(pk=self.pk).exists():
            raise ImmutableObject(f"Comparison #{self.pk} is immutable and cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ImmutableObject(f"Comparison #{self.pk} is immutable and cannot be deleted.")
