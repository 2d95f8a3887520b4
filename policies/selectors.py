"""Reads for policies and prompts."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass

from django.db.models import Count, Prefetch, Q, QuerySet

from policies.compiler import (
    CompileError,
    ExampleSpec,
    LabelSpec,
    ModelSettings,
    PolicySpec,
    RuleSpec,
    TemplateSpec,
    compile_prompt,
    render_user_message,
)
from policies.gate import PublishGateSpec, publish_gate_from_data
from policies.models import Policy, PolicyVersion, PolicyVersionStatus, PromptTemplateVersion, PromptVersion
from policies.policyfile import format_policy_file
from policies.preview_items import PreviewItem
from policies.tokens import token_counter_for
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
        text=version.text, ordered_labels=version.ordered_labels, sensitive_images=version.sensitive_images,
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


@dataclass(frozen=True)
class PromptPreview:
    user_text: str
    user_images: list[str]
    user_tokens: int
    token_method: str
    total_tokens: int
    output_schema: str


def prompt_version_preview(*, prompt_version: PromptVersion, item: PreviewItem) -> PromptPreview:
    """What the model would see for ``item``: the user message, its images and token counts."""
    content = render_user_message(prompt_version.user_message_template, parts=item.parts, images=item.images,
                                  target=item.target)
    user_text = "\n".join(p["text"] for p in content if p["type"] == "text")
    user_tokens, method = token_counter_for(prompt_version.model)(user_text)
    return PromptPreview(user_text=user_text,
                         user_images=[p["image_url"]["url"] for p in content if p["type"] == "image_url"],
                         user_tokens=user_tokens, token_method=method,
                         total_tokens=prompt_version.token_count + user_tokens,
                         output_schema=json.dumps(prompt_version.output_schema, indent=2))


@dataclass(frozen=True)
class VersionDiff:
    policy_diff_html: str
    policy_changed: bool
    prompt_diff_html: str | None


def policy_version_diff(*, version: PolicyVersion, other: PolicyVersion,
                        template_version: PromptTemplateVersion | None) -> VersionDiff:
    """Side-by-side HTML diffs of two versions: the policy file, and the system prompt that
    ``template_version`` renders for each (compiled in memory, nothing stored)."""
    # No wrapcolumn: it cut words and marked the pieces with ">"; the page wraps lines at spaces.
    differ = difflib.HtmlDiff()
    left, right = policy_export(version=other), policy_export(version=version)
    policy_html = _wrappable(differ.make_table(left.splitlines(), right.splitlines(), str(other), str(version),
                                               context=True, numlines=3))
    prompt_html = None
    if template_version is not None:
        prompts = []
        for v in (other, version):
            try:
                prompts.append(compile_prompt(policy_version_spec(v), template_spec(template_version),
                                              ModelSettings(model="sim-strong")).system_prompt)
            except CompileError as exc:
                prompts.append(f"(does not compile: {exc})")
        prompt_html = _wrappable(differ.make_table(prompts[0].splitlines(), prompts[1].splitlines(),
                                                   f"{other} · {template_version}", f"{version} · {template_version}",
                                                   context=True, numlines=3))
    return VersionDiff(policy_diff_html=policy_html, policy_changed=left != right, prompt_diff_html=prompt_html)


def _wrappable(table_html: str) -> str:
    """HtmlDiff writes every space as &nbsp;, which never wraps; plain spaces under the page's
    ``white-space: pre-wrap`` keep the indentation and wrap between words."""
    return table_html.replace("&nbsp;", " ")


def policy_publish_gate(*, policy: Policy) -> PublishGateSpec | None:
    """The policy's publish gate (see :mod:`policies.gate`), or None."""
    return publish_gate_from_data(policy.publish_gate) if policy.publish_gate else None


def policy_export(*, version: PolicyVersion) -> str:
    """The version as a policy file (the format ``policy import`` reads), with the policy's
    publish gate."""
    return format_policy_file(policy_version_spec(version), policy_publish_gate(policy=version.policy))


def template_spec(template_version: PromptTemplateVersion) -> TemplateSpec:
    return TemplateSpec(key=template_version.template.key, version=template_version.number,
                        body=template_version.body)


def policy_version_for_labels(ref: str) -> PolicyVersion:
    """``SLUG@N``, or the published version of ``SLUG``. Raises NotFound."""
    if "@" in ref:
        return policy_version_get_by_ref(ref)
    version = policy_version_get_by_ref(ref)
    published = policy_version_published(policy=version.policy)
    if published is None:
        raise NotFound(f"Policy {ref!r} has no published version; name one as {ref}@N.")
    return published


def policy_overview_list() -> QuerySet[Policy]:
    """Every policy by slug, for the home page: ``published`` (a list of at most one version),
    ``in_review`` and ``drafts`` (how many of its versions are in each state)."""
    from_status = {status: Count("versions", filter=Q(versions__status=status))
                   for status in (PolicyVersionStatus.IN_REVIEW, PolicyVersionStatus.DRAFT)}
    return (Policy.objects.order_by("slug")
            .annotate(in_review=from_status[PolicyVersionStatus.IN_REVIEW],
                      drafts=from_status[PolicyVersionStatus.DRAFT])
            .prefetch_related(Prefetch("versions", to_attr="published",
                                       queryset=PolicyVersion.objects.filter(status=PolicyVersionStatus.PUBLISHED))))
