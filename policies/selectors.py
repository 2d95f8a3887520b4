"""Reads for policies and prompts."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from policies.compiler import ExampleSpec, LabelSpec, PolicySpec, RuleSpec
from policies.models import Policy, PolicyVersion, PolicyVersionStatus, PromptTemplateVersion, PromptVersion
from touchstone.errors import NotFound
from touchstone.models import AuditEvent


def policy_version_get(*, slug: str, number: int | None = None) -> PolicyVersion:
    """``slug@number``, or the newest version when ``number`` is None. Raises NotFound."""
    versions = PolicyVersion.objects.select_related("policy").filter(policy__slug=slug)
    version = versions.filter(number=number).first() if number else versions.order_by("-number").first()
    if version is None:
        raise NotFound(f"No policy version {slug}@{number}." if number else f"No policy {slug!r}.")
    return version


def policy_version_get_by_ref(ref: str) -> PolicyVersion:
    """Parse ``SLUG`` or ``SLUG@N``."""
    slug, _, number = ref.partition("@")
    if number and not number.isdigit():
        raise NotFound(f"{ref!r}: the version after '@' must be a number.")
    return policy_version_get(slug=slug, number=int(number) if number else None)


def policy_version_published(*, policy: Policy) -> PolicyVersion | None:
    return policy.versions.filter(status=PolicyVersionStatus.PUBLISHED).first()


def policy_list() -> QuerySet[Policy]:
    return Policy.objects.select_related("owner").annotate(version_count=Count("versions"))


def policy_version_spec(version: PolicyVersion) -> PolicySpec:
    """The pure compiler input for ``version`` (three queries)."""
    return PolicySpec(
        slug=version.policy.slug, title=version.policy.title, version=version.number,
        text=version.text,
        labels=tuple(LabelSpec(key=lb.key, name=lb.name, definition=lb.definition,
                               is_violation=lb.is_violation, always_human_review=lb.always_human_review)
                     for lb in version.labels.all()),
        rules=tuple(RuleSpec(rule_id=r.rule_id, text=r.text, label_key=r.label_key or None)
                    for r in version.rules.all()),
        examples=tuple(ExampleSpec(label_key=e.label_key, text=e.text, polarity=e.polarity,
                                   explanation=e.explanation)
                       for e in version.examples.all()),
    )


def prompt_template_version_latest_list() -> list[PromptTemplateVersion]:
    """The newest version of every template, in template-key order."""
    latest: dict[int, PromptTemplateVersion] = {}
    for tv in PromptTemplateVersion.objects.select_related("template").order_by("template__key", "-number"):
        latest.setdefault(tv.template_id, tv)
    return list(latest.values())


def prompt_version_list(*, policy_version: PolicyVersion) -> QuerySet[PromptVersion]:
    return policy_version.prompt_versions.select_related("template_version__template").order_by(
        "template_version__template__key", "model", "-created_at")


def audit_event_list_for(obj: object) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.select_related("actor").filter(
        object_type=obj._meta.label, object_id=str(obj.pk))  # type: ignore[attr-defined]
