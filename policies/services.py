"""Writes for policies and prompts. Each public service owns its transaction and audits."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from policies.compiler import (
    COMPILER_VERSION,
    CompileError,
    ModelSettings,
    PolicySpec,
    TemplateSpec,
    compile_prompt,
    policy_spec_digest,
    validate_policy,
    validate_template,
)
from policies.gate import GateProblem, PublishGateSpec, publish_gate_from_data
from policies.models import (
    Policy,
    PolicyExample,
    PolicyLabel,
    PolicyRule,
    PolicyVersion,
    PolicyVersionStatus,
    PromptTemplate,
    PromptTemplateVersion,
    PromptVersion,
    TemplateFormat,
)
from policies.policyfile import parse_policy_file_full
from policies.prepublish import PrepublishVerdict, prepublish_checks_run
from policies.selectors import (
    policy_version_published,
    policy_version_spec,
    prompt_template_version_latest_list,
    template_spec,
)
from policies.tokens import token_counter_for
from touchstone.audit import audit_event_record
from touchstone.errors import (
    ApplicationError,
    InvalidStateTransition,
    LocatedError,
    PermissionDenied,
)
from touchstone.lines import LineError
from touchstone.models import AuditEvent

BUILTIN_TEMPLATES_DIR = Path(__file__).resolve().parent / "prompt_templates"
BUILTIN_TEMPLATES = {
    "json_classifier": ("Structured-JSON classifier", TemplateFormat.JSON_CLASSIFIER,
                        "A generic classifier prompt: policy, labels, rules, examples, JSON output."),
    "sectioned_policy": ("Sectioned policy", TemplateFormat.SECTIONED_POLICY,
                         "Instructions, definitions, what violates, what is safe, examples: the "
                         "layout used by open safety reasoning models."),
    "category_blocks": ("Category blocks", TemplateFormat.CATEGORY_BLOCKS,
                        "Numbered unsafe-content categories in the style of Llama-Guard-type models."),
}

class PolicyCompileError(ApplicationError):
    code = "policy_compile_error"

    def __init__(self, error: CompileError) -> None:
        super().__init__(str(error), extra={"problems": [
            {"field": field, "message": message} for field, message in error.problems]})
        self.problems = error.problems


class MakerCheckerViolation(PermissionDenied):
    code = "maker_checker_violation"


# --- built-in templates (run after every migrate) ----------------------------------------------

def prompt_templates_sync() -> list[PromptTemplateVersion]:
    """Make the built-in templates' newest versions match the files; new text, new version."""
    created = []
    for key, (name, fmt, description) in BUILTIN_TEMPLATES.items():
        body = (BUILTIN_TEMPLATES_DIR / f"{key}.txt").read_text()
        template, _ = PromptTemplate.objects.get_or_create(
            key=key, defaults={"name": name, "format": fmt, "description": description, "is_builtin": True})
        digest = hashlib.sha256(body.encode()).hexdigest()
        if template.versions.filter(sha256=digest).exists():
            continue
        number = (template.versions.aggregate(n=Max("number"))["n"] or 0) + 1
        created.append(PromptTemplateVersion.objects.create(
            template=template, number=number, body=body, sha256=digest, note="built-in template"))
    return created


@transaction.atomic(durable=True)
def prompt_template_version_create(*, template: PromptTemplate, body: str, note: str,
                                   acting_user: AbstractBaseUser | None) -> PromptTemplateVersion:
    """A new template version; raises PolicyCompileError when the body uses unknown variables."""
    problems = validate_template(TemplateSpec(key=template.key, version=0, body=body))
    if problems:
        raise PolicyCompileError(CompileError(problems))
    version = PromptTemplateVersion.objects.create(
        template=template, number=(template.versions.aggregate(n=Max("number"))["n"] or 0) + 1,
        body=body, sha256=hashlib.sha256(body.encode()).hexdigest(), note=note)
    audit_event_record(actor=acting_user, event_type="prompt_template_version.created", obj=version)
    return version


# --- policy versions ----------------------------------------------------------------------------

def _lock_version(version: PolicyVersion) -> PolicyVersion:
    return PolicyVersion.objects.select_for_update().select_related("policy").get(pk=version.pk)


def _write_taxonomy(version: PolicyVersion, spec: PolicySpec) -> None:
    """Runs inside the caller's transaction; ``version`` is a fresh draft."""
    PolicyLabel.objects.bulk_create(
        PolicyLabel(version=version, position=i, key=lb.key, name=lb.name, definition=lb.definition,
                    is_violation=lb.is_violation, always_human_review=lb.always_human_review)
        for i, lb in enumerate(spec.labels))
    PolicyRule.objects.bulk_create(
        PolicyRule(version=version, position=i, rule_id=r.rule_id, label_key=r.label_key or "",
                   text=r.text)
        for i, r in enumerate(spec.rules))
    PolicyExample.objects.bulk_create(
        PolicyExample(version=version, position=i, label_key=e.label_key, polarity=e.polarity,
                      text=e.text, explanation=e.explanation)
        for i, e in enumerate(spec.examples))


def policy_version_next_number(*, policy: Policy) -> int:
    return (policy.versions.aggregate(n=Max("number"))["n"] or 0) + 1


def _draft_create(*, policy: Policy, spec: PolicySpec, acting_user: AbstractBaseUser,
                  parent: PolicyVersion | None, change_note: str) -> PolicyVersion:
    """Runs inside the caller's transaction."""
    version = PolicyVersion.objects.create(policy=policy, number=policy_version_next_number(policy=policy),
                                           text=spec.text, ordered_labels=spec.ordered_labels,
                                           sensitive_images=spec.sensitive_images,
                                           author=acting_user, parent=parent, change_note=change_note)
    _write_taxonomy(version, spec)
    audit_event_record(actor=acting_user, event_type="policy_version.created", obj=version,
                       details={"parent": str(parent) if parent else None, "change_note": change_note})
    return version


@transaction.atomic(durable=True)
def policy_version_create_draft(*, from_version: PolicyVersion, acting_user: AbstractBaseUser,
                                change_note: str = "") -> PolicyVersion:
    """A new draft whose content is a copy of ``from_version`` (how published policies change)."""
    spec = policy_version_spec(from_version)
    return _draft_create(policy=from_version.policy, spec=spec, acting_user=acting_user,
                         parent=from_version, change_note=change_note or f"from {from_version}")


def policy_version_record_edit(*, version: PolicyVersion, acting_user: AbstractBaseUser,
                               changed: list[str]) -> AuditEvent:
    """Audit an edit made through a form. Runs inside the form's transaction."""
    return audit_event_record(actor=acting_user, event_type="policy_version.edited", obj=version,
                              details={"changed": changed})


def _compile_check(version: PolicyVersion) -> PolicySpec:
    spec = policy_version_spec(version)
    problems = validate_policy(spec)
    if problems:
        raise PolicyCompileError(CompileError(problems))
    return spec


@transaction.atomic(durable=True)
def policy_version_submit(*, version: PolicyVersion, acting_user: AbstractBaseUser) -> PolicyVersion:
    """draft → in review. The taxonomy must compile; its content digest is fixed here."""
    version = _lock_version(version)
    if version.status != PolicyVersionStatus.DRAFT:
        raise InvalidStateTransition(f"{version} is {version.status}; only drafts can be submitted.")
    spec = _compile_check(version)
    PolicyVersion.objects.filter(pk=version.pk)._transition(
        status=PolicyVersionStatus.IN_REVIEW, submitted_at=timezone.now(),
        content_sha256=policy_spec_digest(spec))
    audit_event_record(actor=acting_user, event_type="policy_version.submitted", obj=version)
    version.refresh_from_db()
    return version


@transaction.atomic(durable=True)
def policy_version_return_to_draft(*, version: PolicyVersion, acting_user: AbstractBaseUser,
                                   reason: str) -> PolicyVersion:
    """in review → draft, with the reviewer's reason."""
    version = _lock_version(version)
    if version.status != PolicyVersionStatus.IN_REVIEW:
        raise InvalidStateTransition(f"{version} is {version.status}; only versions in review "
                                     "can be returned to draft.")
    PolicyVersion.objects.filter(pk=version.pk)._transition(
        status=PolicyVersionStatus.DRAFT, submitted_at=None, content_sha256="")
    audit_event_record(actor=acting_user, event_type="policy_version.returned", obj=version,
                       details={"reason": reason})
    version.refresh_from_db()
    return version


def _makers(version: PolicyVersion) -> set[int]:
    edits = AuditEvent.objects.filter(
        object_type=PolicyVersion._meta.label, object_id=str(version.pk),
        event_type__in=["policy_version.created", "policy_version.edited"]).values_list("actor_id", flat=True)
    return {version.author_id, *(actor for actor in edits if actor is not None)}


class PublishGateFailed(InvalidStateTransition):
    """A pre-publish check (the policy's publish gate) failed and no override reason was given."""

    code = "publish_gate_failed"


def _publish_refusal(version: PolicyVersion, acting_user: AbstractBaseUser) -> None:
    """Raise what refuses ``acting_user`` publishing ``version`` (``version`` is fresh)."""
    if not acting_user.has_perm("policies.publish_policyversion"):
        raise PermissionDenied(f"{acting_user} may not approve policy versions.")
    if acting_user.pk in _makers(version):
        raise MakerCheckerViolation(f"{acting_user} wrote or edited {version} and cannot also "
                                    "approve it: another approver must publish it.")
    if version.status != PolicyVersionStatus.IN_REVIEW:
        raise InvalidStateTransition(f"{version} is {version.status}; submit it for review first.")


def policy_version_publish(*, version: PolicyVersion, acting_user: AbstractBaseUser,
                           override_reason: str = "") -> PolicyVersion:
    """in review → published (maker-checker). The previously published version is retired.

    Before publishing, every registered pre-publish check runs (:mod:`policies.prepublish`; the
    publish gate of the policy, computed by the evaluation app). When one fails, publishing
    raises PublishGateFailed naming what failed or is missing, unless ``override_reason`` is a
    non-empty written reason and ``acting_user`` has ``policies.override_publish_gate``; the
    published audit event records the verdicts and the override.

    Raises MakerCheckerViolation when the approver wrote or edited the version,
    PermissionDenied without the publish permission (or, to override, the override
    permission), PublishGateFailed, InvalidStateTransition otherwise.
    """
    _publish_refusal(PolicyVersion.objects.select_related("policy").get(pk=version.pk), acting_user)
    # Outside the transaction: a check may compute and store what it needs (a comparison).
    verdicts = prepublish_checks_run(version=version, acting_user=acting_user)
    failed = [v for v in verdicts if not v.passed]
    override_reason = override_reason.strip()
    if failed and not override_reason:
        with transaction.atomic():  # the refusal is on the record too
            audit_event_record(actor=acting_user, event_type="policy_version.publish_blocked", obj=version,
                               details={"verdicts": [v.as_json() for v in verdicts]})
        raise PublishGateFailed(
            f"{version} cannot be published: " + "; ".join(v.message for v in failed)
            + ". An approver may override with a written reason.",
            extra={"verdicts": [v.as_json() for v in verdicts]})
    if failed and not acting_user.has_perm("policies.override_publish_gate"):
        raise PermissionDenied(f"{acting_user} may not override a failing publish gate: that needs the "
                               "policies.override_publish_gate permission")
    return _publish(version=version, acting_user=acting_user, verdicts=verdicts,
                    override_reason=override_reason if failed else "")


@transaction.atomic(durable=True)
def _publish(*, version: PolicyVersion, acting_user: AbstractBaseUser, verdicts: list[PrepublishVerdict],
             override_reason: str) -> PolicyVersion:
    version = _lock_version(version)
    _publish_refusal(version, acting_user)
    spec = _compile_check(version)
    if policy_spec_digest(spec) != version.content_sha256:
        raise InvalidStateTransition(f"{version} changed after it was submitted; resubmit it.")
    now = timezone.now()
    previous = policy_version_published(policy=version.policy)
    if previous is not None:
        PolicyVersion.objects.filter(pk=previous.pk)._transition(
            status=PolicyVersionStatus.RETIRED, retired_at=now)
        audit_event_record(actor=acting_user, event_type="policy_version.retired", obj=previous,
                           details={"superseded_by": str(version)})
    PolicyVersion.objects.filter(pk=version.pk)._transition(
        status=PolicyVersionStatus.PUBLISHED, approver=acting_user, published_at=now)
    details: dict = {"content_sha256": version.content_sha256, "retired": str(previous) if previous else None}
    if verdicts:
        details["prepublish"] = [v.as_json() for v in verdicts]
    if override_reason:
        details["override"] = {"reason": override_reason,
                               "failed": [v.message for v in verdicts if not v.passed]}
    audit_event_record(actor=acting_user, event_type="policy_version.published", obj=version, details=details)
    if override_reason:
        audit_event_record(actor=acting_user, event_type="policy_version.publish_gate_overridden", obj=version,
                           details=details["override"] | {"verdicts": details["prepublish"]})
    version.refresh_from_db()
    return version


@transaction.atomic(durable=True)
def policy_version_retire(*, version: PolicyVersion, acting_user: AbstractBaseUser) -> PolicyVersion:
    version = _lock_version(version)
    if version.status != PolicyVersionStatus.PUBLISHED:
        raise InvalidStateTransition(f"{version} is {version.status}; only published versions retire.")
    if not acting_user.has_perm("policies.publish_policyversion"):
        raise PermissionDenied(f"{acting_user} may not retire policy versions.")
    PolicyVersion.objects.filter(pk=version.pk)._transition(
        status=PolicyVersionStatus.RETIRED, retired_at=timezone.now())
    audit_event_record(actor=acting_user, event_type="policy_version.retired", obj=version)
    version.refresh_from_db()
    return version


# --- publish gates -----------------------------------------------------------------------------

class PublishGateInvalid(ApplicationError):
    code = "invalid_publish_gate"

    def __init__(self, problem: GateProblem) -> None:
        super().__init__(f"publish_gate.{problem.field}: {problem.reason}",
                         extra={"field": f"publish_gate.{problem.field}", "reason": problem.reason})


def policy_publish_gate_write(*, policy: Policy, gate: PublishGateSpec | None, acting_user: AbstractBaseUser,
                              source: str) -> None:
    """Store a validated gate (or None) and audit it. Runs inside the caller's transaction (the
    admin's form, ``policy_import``, ``policy_publish_gate_set``)."""
    before = policy.publish_gate
    Policy.objects.filter(pk=policy.pk).update(publish_gate=gate.as_json() if gate else None)
    policy.refresh_from_db(fields=["publish_gate"])
    audit_event_record(actor=acting_user, event_type="policy.publish_gate_set", obj=policy,
                       details={"before": before, "after": policy.publish_gate, "source": source})


@transaction.atomic(durable=True)
def policy_publish_gate_set(*, policy: Policy, gate: dict | None, acting_user: AbstractBaseUser,
                            source: str = "admin") -> Policy:
    """Set (``gate`` a mapping, see :mod:`policies.gate`) or remove (None) the policy's publish
    gate. Raises PermissionDenied without ``policies.change_policy``, PublishGateInvalid naming
    the bad field."""
    if not acting_user.has_perm("policies.change_policy"):
        raise PermissionDenied(f"{acting_user} may not change the publish gate of {policy}: that needs the "
                               "policies.change_policy permission")
    spec = None
    if gate is not None:
        labels = None
        newest = policy.versions.order_by("-number").first()
        if newest is not None:
            labels = tuple(label.key for label in policy_version_spec(newest).labels)
        try:
            spec = publish_gate_from_data(gate, labels=labels)
        except GateProblem as exc:
            raise PublishGateInvalid(exc) from None
    policy_publish_gate_write(policy=policy, gate=spec, acting_user=acting_user, source=source)
    return policy


# --- policies as files ------------------------------------------------------------------------

@dataclass(frozen=True)
class PolicyImportResult:
    version: PolicyVersion
    created: bool


@transaction.atomic(durable=True)
def policy_import(*, text: str, path: str, acting_user: AbstractBaseUser) -> PolicyImportResult:
    """Create a draft version from a policy file, or return the newest version when its
    content is identical (re-importing is a no-op). Raises LocatedError naming file, line and
    field; nothing is written on error."""
    try:
        parsed = parse_policy_file_full(text, path=path)
    except LineError as exc:
        raise LocatedError(exc.reason, path=exc.path, line=exc.line, field=exc.field) from exc
    spec = parsed.spec
    policy, created_policy = Policy.objects.get_or_create(
        slug=spec.slug, defaults={"title": spec.title, "owner": acting_user})
    if created_policy:
        audit_event_record(actor=acting_user, event_type="policy.created", obj=policy)
    elif policy.title != spec.title:
        policy.title = spec.title
        policy.save(update_fields=["title"])
        audit_event_record(actor=acting_user, event_type="policy.edited", obj=policy,
                           details={"title": spec.title})
    if parsed.publish_gate is not None and policy.publish_gate != parsed.publish_gate.as_json():
        policy_publish_gate_write(policy=policy, gate=parsed.publish_gate, acting_user=acting_user,
                                  source=Path(path).name)
    latest = policy.versions.order_by("-number").first()
    if latest is not None and policy_spec_digest(policy_version_spec(latest)) == policy_spec_digest(spec):
        return PolicyImportResult(version=latest, created=False)
    version = _draft_create(policy=policy, spec=spec, acting_user=acting_user, parent=latest,
                            change_note=f"imported from {Path(path).name}")
    return PolicyImportResult(version=version, created=True)


# --- prompt versions ----------------------------------------------------------------------------

def prompt_version_compile(*, policy_version: PolicyVersion, template_version: PromptTemplateVersion,
                           settings: ModelSettings, acting_user: AbstractBaseUser | None
                           ) -> tuple[PromptVersion, bool]:
    """Compile and store; the same inputs return the existing row (``created`` False).

    Raises PolicyCompileError listing every problem with its field.
    """
    spec = policy_version_spec(policy_version)
    try:
        compiled = compile_prompt(spec, template_spec(template_version), settings,
                                  count_tokens=token_counter_for(settings.model))
    except CompileError as exc:
        raise PolicyCompileError(exc) from exc
    existing = PromptVersion.objects.filter(sha256=compiled.sha256).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            prompt_version = PromptVersion.objects.create(
                policy_version=policy_version, template_version=template_version,
                model=settings.model, temperature=settings.temperature,
                max_output_tokens=settings.max_output_tokens,
                reasoning_effort=settings.reasoning_effort or "", seed=settings.seed,
                context_window=settings.context_window, system_prompt=compiled.system_prompt,
                user_message_template=compiled.user_message_template,
                output_schema=compiled.output_schema, token_count=compiled.token_count,
                token_count_method=compiled.token_count_method, compiler_version=COMPILER_VERSION,
                sha256=compiled.sha256, created_by=acting_user)
            audit_event_record(actor=acting_user, event_type="prompt_version.compiled",
                               obj=prompt_version, details={"sha256": compiled.sha256,
                                                            "tokens": compiled.token_count})
    except IntegrityError:
        # A concurrent compile of the same inputs won the race: same content, same row.
        return PromptVersion.objects.get(sha256=compiled.sha256), False
    return prompt_version, True


def prompt_version_compile_all(*, policy_version: PolicyVersion, settings: ModelSettings,
                               acting_user: AbstractBaseUser | None) -> list[tuple[PromptVersion, bool]]:
    """Compile ``policy_version`` with the newest version of every template."""
    return [prompt_version_compile(policy_version=policy_version, template_version=tv,
                                   settings=settings, acting_user=acting_user)
            for tv in prompt_template_version_latest_list()]
