"""Golden sets: named datasets of a policy, frozen into immutable, digested versions."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import models

from touchstone.errors import ImmutableObject


def _new_salt() -> str:
    return secrets.token_hex(16)


class GoldenSet(models.Model):
    name = models.SlugField(max_length=100, unique=True)
    policy = models.ForeignKey("policies.Policy", on_delete=models.PROTECT, related_name="golden_sets")
    description = models.TextField(blank=True)
    owners = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="golden_sets")
    # Keys the labeler pseudonyms in exports: stable within this golden set, unlinkable across sets.
    pseudonym_key = models.CharField(max_length=64, default=_new_salt, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        permissions = [
            ("freeze_goldenset", "Can freeze a new golden-set version"),
            ("view_raw_labeler_ids", "Can export raw (not pseudonymized) labeler ids"),
        ]

    def __str__(self) -> str:
        return self.name


class GoldenSetVersionStatus(models.TextChoices):
    BUILDING = "building"
    FROZEN = "frozen"
    FAILED = "failed"
    # The freeze found the same items, gold labels and labels (the same digest) as the newest
    # frozen version, its ``parent``: no new version was made.
    UNCHANGED = "unchanged"


class DecidedBy(models.TextChoices):
    UNANIMOUS = "unanimous"
    MAJORITY = "majority"
    ADJUDICATED = "adjudicated"
    LLM_AUTO_ACCEPTED = "llm_auto_accepted", "LLM auto-accepted (no human label)"


class FrozenQuerySet(models.QuerySet):
    """Refuses bulk changes that would touch a frozen version or its items."""

    frozen_filter: dict[str, Any] = {}

    def _refuse_if_frozen(self, verb: str) -> None:
        if self.filter(**self.frozen_filter).exists():
            raise ImmutableObject(f"A frozen golden-set version cannot be {verb}.")

    def update(self, **kwargs: Any) -> int:
        self._refuse_if_frozen("changed")
        return super().update(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        self._refuse_if_frozen("deleted")
        return super().delete()

    def bulk_update(self, objs: Iterable[Any], *args: Any, **kwargs: Any) -> int:
        objs = list(objs)
        self.filter(pk__in=[obj.pk for obj in objs])._refuse_if_frozen("changed")
        return super().bulk_update(objs, *args, **kwargs)


class GoldenSetVersionQuerySet(FrozenQuerySet):
    frozen_filter = {"status": GoldenSetVersionStatus.FROZEN}

    def bulk_create(self, objs: Iterable[Any], *args: Any, **kwargs: Any) -> list[Any]:
        objs = list(objs)
        if any(obj.status == GoldenSetVersionStatus.FROZEN for obj in objs):
            raise ImmutableObject("A golden-set version is frozen only by a freeze, never created frozen.")
        return super().bulk_create(objs, *args, **kwargs)


class GoldenItemQuerySet(FrozenQuerySet):
    frozen_filter = {"version__status": GoldenSetVersionStatus.FROZEN}

    def bulk_create(self, objs: Iterable[Any], *args: Any, **kwargs: Any) -> list[Any]:
        objs = list(objs)
        if GoldenSetVersion.objects.filter(pk__in={obj.version_id for obj in objs},
                                           status=GoldenSetVersionStatus.FROZEN).exists():
            raise ImmutableObject("Items cannot be added to a frozen golden-set version.")
        return super().bulk_create(objs, *args, **kwargs)


class GoldenSetVersion(models.Model):
    """A freeze of a golden set. ``number`` is given when the freeze succeeds (1, 2, 3…);
    a building or failed freeze has none. Frozen versions never change."""

    golden_set = models.ForeignKey(GoldenSet, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=GoldenSetVersionStatus.choices,
                              default=GoldenSetVersionStatus.BUILDING, db_index=True)
    policy_version = models.ForeignKey("policies.PolicyVersion", on_delete=models.PROTECT, related_name="+")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    freeze_rule = models.JSONField(default=dict)
    changelog = models.CharField(max_length=500, blank=True)
    item_count = models.PositiveIntegerField(default=0)
    label_distribution = models.JSONField(default=dict, blank=True)
    excluded = models.JSONField(default=dict, blank=True, help_text="Items left out, counted by reason.")
    stats = models.JSONField(default=dict, blank=True)
    digest = models.CharField(max_length=64, blank=True)
    # Nullable so that adding it altered no table: SQLite would rebuild the table for a column
    # with a default, dropping its immutability triggers. Empty for versions frozen before it.
    heads_sha256 = models.CharField(  # noqa: DJ001
        max_length=64, null=True, blank=True,
        help_text="sha256 of the items' export heads, each followed by a newline, in item order: exports check "
                  "what they write against it.")
    lineage_summary = models.JSONField(
        null=True, blank=True, help_text="The runs, prompt versions and queues the items came through, recorded at "
                                         "freeze time for the manifest (empty for versions frozen before it).")
    failure_reason = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    frozen_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")
    frozen_at = models.DateTimeField(null=True, blank=True)

    objects = GoldenSetVersionQuerySet.as_manager()

    class Meta:
        ordering = ["golden_set", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["golden_set", "number"], name="golden_set_version_number"),
            models.CheckConstraint(
                condition=~models.Q(status="frozen") | (models.Q(number__isnull=False) & ~models.Q(digest="")),
                name="golden_set_version_frozen_has_number_and_digest"),
        ]

    def __str__(self) -> str:
        return f"{self.golden_set.name}@{self.number}" if self.number else f"{self.golden_set.name} (freeze #{self.pk})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self._stored_status() == GoldenSetVersionStatus.FROZEN:
            raise ImmutableObject(f"{self} is frozen and cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        if self._stored_status() == GoldenSetVersionStatus.FROZEN:
            raise ImmutableObject(f"{self} is frozen and cannot be deleted.")
        return super().delete(*args, **kwargs)

    def _stored_status(self) -> str | None:
        if self.pk is None:
            return None
        return type(self).objects.filter(pk=self.pk).values_list("status", flat=True).first()


class GoldenItem(models.Model):
    """A frozen snapshot of one item: content, gold label, how it was decided, every label."""

    version = models.ForeignKey(GoldenSetVersion, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField(help_text="Order in the version: by (source, external id).")
    item = models.ForeignKey("content.ContentItem", on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=100)
    external_id = models.CharField(max_length=255)
    content_sha256 = models.CharField(max_length=64)
    parts = models.JSONField()
    metadata = models.JSONField(default=dict)
    gold_label = models.CharField(max_length=63)
    decided_by = models.CharField(max_length=24, choices=DecidedBy.choices)
    labels = models.JSONField(default=list, help_text="Every human label: labeler, vendor, label, role, time.")
    llm = models.JSONField(null=True, blank=True, help_text="The LLM run's decision and votes, if any.")
    lineage = models.JSONField(default=dict)
    export_head = models.TextField(
        editable=False, help_text="The item's export line up to and with its labels (labelers pseudonymized), "
                                  "without the closing brace; made at freeze time. Exports recompute the digest "
                                  "from it, so what is written is what is verified.")

    objects = GoldenItemQuerySet.as_manager()

    class Meta:
        ordering = ["version", "position"]
        constraints = [
            models.UniqueConstraint(fields=["version", "position"], name="golden_item_position"),
            models.UniqueConstraint(fields=["version", "item"], name="golden_item_once"),
        ]
        indexes = [models.Index(fields=["version", "gold_label", "position"])]

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id} = {self.gold_label}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if GoldenSetVersion.objects.filter(pk=self.version_id, status=GoldenSetVersionStatus.FROZEN).exists():
            raise ImmutableObject("Items of a frozen golden-set version cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        if GoldenSetVersion.objects.filter(pk=self.version_id, status=GoldenSetVersionStatus.FROZEN).exists():
            raise ImmutableObject("Items of a frozen golden-set version cannot be deleted.")
        return super().delete(*args, **kwargs)
