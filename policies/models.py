"""Policies, their versions and taxonomies, prompt templates and compiled prompt versions.

Immutability: a policy version's content (text, labels, rules, examples) can change only
while it is a draft; prompt template versions and prompt versions are write-once. This is
enforced in ``save()``/``delete()`` and against ``QuerySet.update()``/``delete()``; state
transitions go through ``_transition()``, which only services call.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from touchstone.errors import ImmutableObject


class PolicyVersionStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    PUBLISHED = "published", "Published"
    RETIRED = "retired", "Retired"


class Policy(models.Model):
    slug = models.SlugField(max_length=80, unique=True)
    title = models.CharField(max_length=200)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                              related_name="owned_policies")
    created_at = models.DateTimeField(auto_now_add=True)
    publish_gate = models.JSONField(
        null=True, blank=True,
        help_text="What a version must show on a golden set before it is published (see policies.gate); "
                  "set through policy_publish_gate_set or the policy file's publish_gate block.")

    class Meta:
        ordering = ["slug"]
        verbose_name_plural = "policies"

    def __str__(self) -> str:
        return self.slug


class PolicyVersionQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        if self.exclude(status=PolicyVersionStatus.DRAFT).exists():
            raise ImmutableObject("Only draft policy versions can be changed.")
        return super().update(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        if self.exclude(status=PolicyVersionStatus.DRAFT).exists():
            raise ImmutableObject("Only draft policy versions can be deleted.")
        return super().delete()

    def bulk_update(self, objs: Iterable[Any], *args: Any, **kwargs: Any) -> int:
        objs = list(objs)
        if self.filter(pk__in=[obj.pk for obj in objs]).exclude(status=PolicyVersionStatus.DRAFT).exists():
            raise ImmutableObject("Only draft policy versions can be changed.")
        return super().bulk_update(objs, *args, **kwargs)

    def _transition(self, **kwargs: Any) -> int:
        """Status changes, for services only: bypasses the draft-only guard above."""
        return super().update(**kwargs)


class PolicyVersion(models.Model):
    policy = models.ForeignKey(Policy, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=PolicyVersionStatus.choices,
                              default=PolicyVersionStatus.DRAFT, db_index=True)
    text = models.TextField(help_text="The policy in Markdown.")
    ordered_labels = models.BooleanField(
        default=False, help_text="The labels, in their order, form an ordinal scale (e.g. severity).")
    sensitive_images = models.BooleanField(
        default=False, help_text="Images are shown to human reviewers blurred until they choose to reveal them.")
    change_note = models.CharField(max_length=500, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT,
                               related_name="children", help_text="The version this draft started from.")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                               related_name="authored_policy_versions")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="approved_policy_versions")
    content_sha256 = models.CharField(max_length=64, blank=True,
                                      help_text="Digest of the content, fixed at submission.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    objects = PolicyVersionQuerySet.as_manager()

    class Meta:
        ordering = ["policy__slug", "-number"]
        permissions = [("publish_policyversion", "Can approve and publish policy versions"),
                       ("override_publish_gate", "Can publish a version that fails its policy's publish gate, "
                                                 "with a written reason")]
        constraints = [
            models.UniqueConstraint(fields=["policy", "number"], name="policy_version_number_unique"),
            # At most one published version per policy at any time.
            models.UniqueConstraint(fields=["policy"], condition=Q(status="published"),
                                    name="policy_one_published_version"),
        ]

    def __str__(self) -> str:
        return f"{self.policy.slug}@{self.number}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            stored = type(self).objects.filter(pk=self.pk).values_list("status", flat=True).first()
            if stored is not None and stored != PolicyVersionStatus.DRAFT:
                raise ImmutableObject(f"Policy version {self} is {stored} and cannot be changed; "
                                      "start a new draft from it.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        if self.status != PolicyVersionStatus.DRAFT:
            raise ImmutableObject(f"Policy version {self} is {self.status} and cannot be deleted.")
        return super().delete(*args, **kwargs)

    @property
    def is_editable(self) -> bool:
        return self.status == PolicyVersionStatus.DRAFT


class VersionContentQuerySet(models.QuerySet):
    """Labels, rules and examples: changeable only while their version is a draft."""

    def _guard(self) -> None:
        if self.exclude(version__status=PolicyVersionStatus.DRAFT).exists():
            raise ImmutableObject("This belongs to a policy version that is no longer a draft.")

    def update(self, **kwargs: Any) -> int:
        self._guard()
        return super().update(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        self._guard()
        return super().delete()

    def bulk_create(self, objs: Iterable[Any], *args: Any, **kwargs: Any) -> list[Any]:
        objs = list(objs)
        version_ids = {obj.version_id for obj in objs}
        if PolicyVersion.objects.filter(pk__in=version_ids).exclude(status=PolicyVersionStatus.DRAFT).exists():
            raise ImmutableObject("Content can be added only to a draft policy version.")
        return super().bulk_create(objs, *args, **kwargs)

    def bulk_update(self, objs: Iterable[Any], *args: Any, **kwargs: Any) -> int:
        objs = list(objs)
        self.filter(pk__in=[obj.pk for obj in objs])._guard()
        if PolicyVersion.objects.filter(pk__in={obj.version_id for obj in objs}).exclude(
                status=PolicyVersionStatus.DRAFT).exists():
            raise ImmutableObject("This belongs to a policy version that is no longer a draft.")
        return super().bulk_update(objs, *args, **kwargs)


class VersionContent(models.Model):
    version = models.ForeignKey(PolicyVersion, on_delete=models.CASCADE)
    position = models.PositiveIntegerField(default=0)

    objects = VersionContentQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["position", "id"]

    def save(self, *args: Any, **kwargs: Any) -> None:
        self._guard()
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        self._guard()
        return super().delete(*args, **kwargs)

    def _guard(self) -> None:
        status = PolicyVersion.objects.filter(pk=self.version_id).values_list("status", flat=True).first()
        if status is not None and status != PolicyVersionStatus.DRAFT:
            raise ImmutableObject(f"Policy version {self.version} is {status}: its taxonomy "
                                  "cannot be changed.")


class PolicyLabel(VersionContent):
    version = models.ForeignKey(PolicyVersion, on_delete=models.CASCADE, related_name="labels")
    key = models.CharField(max_length=63, help_text="Lower-case identifier, e.g. targeted_harassment.")
    name = models.CharField(max_length=200)
    definition = models.TextField()
    is_violation = models.BooleanField(default=False)
    always_human_review = models.BooleanField(
        default=False, help_text="Items given this label always go to human review.")

    class Meta(VersionContent.Meta):
        constraints = [models.UniqueConstraint(fields=["version", "key"], name="policy_label_key_unique")]

    def __str__(self) -> str:
        return self.key


class PolicyRule(VersionContent):
    version = models.ForeignKey(PolicyVersion, on_delete=models.CASCADE, related_name="rules")
    rule_id = models.CharField(max_length=63, help_text="Stable id, kept across versions, e.g. HAR-2.")
    label_key = models.CharField(max_length=63, blank=True, help_text="The label this rule belongs to.")
    text = models.TextField()

    class Meta(VersionContent.Meta):
        constraints = [models.UniqueConstraint(fields=["version", "rule_id"], name="policy_rule_id_unique")]

    def __str__(self) -> str:
        return self.rule_id


class ExamplePolarity(models.TextChoices):
    POSITIVE = "positive", "Is this label"
    NEGATIVE = "negative", "Near miss: is not this label"


class PolicyExample(VersionContent):
    version = models.ForeignKey(PolicyVersion, on_delete=models.CASCADE, related_name="examples")
    label_key = models.CharField(max_length=63)
    polarity = models.CharField(max_length=8, choices=ExamplePolarity.choices,
                                default=ExamplePolarity.POSITIVE)
    text = models.TextField()
    explanation = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.polarity} {self.label_key}: {self.text[:40]}"


class TemplateFormat(models.TextChoices):
    JSON_CLASSIFIER = "json_classifier", "Structured-JSON classifier"
    SECTIONED_POLICY = "sectioned_policy", "Sectioned policy (safety reasoning models)"
    CATEGORY_BLOCKS = "category_blocks", "Category blocks (Llama-Guard style)"


class WriteOnceQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        raise ImmutableObject(f"{self.model._meta.verbose_name} rows are write-once.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise ImmutableObject(f"{self.model._meta.verbose_name} rows are write-once.")

    def bulk_update(self, objs: Iterable[Any], *args: Any, **kwargs: Any) -> int:
        raise ImmutableObject(f"{self.model._meta.verbose_name} rows are write-once.")

    def _mark(self, **kwargs: Any) -> int:
        """Bookkeeping fields only (e.g. first use), for services."""
        return super().update(**kwargs)


class WriteOnceModel(models.Model):
    objects = WriteOnceQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and type(self).objects.filter(pk=self.pk).exists():
            raise ImmutableObject(f"{self._meta.verbose_name} {self} is write-once.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ImmutableObject(f"{self._meta.verbose_name} {self} is write-once.")


class PromptTemplate(models.Model):
    key = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=200)
    format = models.CharField(max_length=32, choices=TemplateFormat.choices)
    description = models.TextField(blank=True)
    is_builtin = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class PromptTemplateVersion(WriteOnceModel):
    template = models.ForeignKey(PromptTemplate, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    body = models.TextField()
    sha256 = models.CharField(max_length=64)
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["template__key", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="template_version_number_unique"),
            models.UniqueConstraint(fields=["template", "sha256"], name="template_version_body_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.template.key}@{self.number}"


class ReasoningEffort(models.TextChoices):
    MINIMAL = "minimal"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class PromptVersion(WriteOnceModel):
    """A compiled prompt: content-addressed by ``sha256``, write-once."""

    policy_version = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT,
                                       related_name="prompt_versions")
    template_version = models.ForeignKey(PromptTemplateVersion, on_delete=models.PROTECT,
                                         related_name="prompt_versions")
    model = models.CharField(max_length=120)
    temperature = models.FloatField(default=0.0)
    max_output_tokens = models.PositiveIntegerField(default=512)
    reasoning_effort = models.CharField(max_length=8, choices=ReasoningEffort.choices, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    context_window = models.PositiveIntegerField(null=True, blank=True)
    system_prompt = models.TextField()
    user_message_template = models.JSONField()
    output_schema = models.JSONField()
    token_count = models.PositiveIntegerField()
    token_count_method = models.CharField(max_length=64)
    compiler_version = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    first_used_at = models.DateTimeField(null=True, blank=True,
                                         help_text="When a labeling run first used it.")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(temperature__gte=0) & Q(temperature__lte=2),
                                   name="prompt_version_temperature_range"),
        ]

    def __str__(self) -> str:
        return f"{self.policy_version}·{self.template_version.template.key}·{self.model}·{self.sha256[:10]}"

    @property
    def is_simulated(self) -> bool:
        return self.model.startswith("sim-")
