"""Signals and signal versions: create them (audited, permission-checked)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_slug
from django.db import transaction
from django.db.models import Max

from evaluation.models import VIOLATING, Signal, SignalKind, SignalOutputType, SignalVersion
from policies.models import Policy, PolicyVersion, PromptVersion
from policies.selectors import policy_version_get, policy_version_published, policy_version_spec
from runs.models import LabelingRun
from touchstone.audit import audit_event_record
from touchstone.errors import ApplicationError
from touchstone.roles import permission_require

MAX_NAME = Signal._meta.get_field("name").max_length


class SignalError(ApplicationError):
    code = "signal_error"


class SignalExists(ApplicationError):
    code = "signal_exists"
    status = 409


def taxonomy_of(policy_version: PolicyVersion) -> list[str]:
    """The label keys of a policy version, in the taxonomy's order."""
    return [label.key for label in policy_version_spec(policy_version).labels]


def _check_score_label(*, output_type: str, score_label: str, taxonomy: list[str], where: str) -> None:
    if output_type == SignalOutputType.LABEL:
        if score_label:
            raise SignalError("--score-label: only a score signal has one (a label signal's score is its "
                              "confidence in the row's label)")
        return
    if not score_label:
        raise SignalError(f"--score-label: a score signal names what it scores: {VIOLATING!r} or a label key")
    if score_label != VIOLATING and score_label not in taxonomy:
        raise SignalError(f"--score-label: {score_label!r} is neither {VIOLATING!r} nor a label of {where} "
                          f"(labels: {', '.join(taxonomy)})")


def signal_name_check(name: str) -> str:
    """A signal name: letters, digits, - and _, at most 100 characters. Raises SignalError."""
    try:
        validate_slug(name)
    except ValidationError:
        raise SignalError(f"signal name {name!r}: use only letters, digits, '-' and '_'") from None
    if len(name) > MAX_NAME:
        raise SignalError(f"signal name {name!r}: longer than {MAX_NAME} characters")
    return name


@transaction.atomic(durable=True)
def signal_create(*, name: str, kind: str, policy: Policy, output_type: str, acting_user: AbstractBaseUser,
                  score_label: str = "", description: str = "", owner: AbstractBaseUser | None = None) -> Signal:
    """Register a signal. Its name, kind, policy, output type and score label never change.

    Raises PermissionDenied, SignalError (bad name, kind, output type or score label) and
    SignalExists (the name is taken)."""
    permission_require(acting_user, "evaluation.add_signal", to="create signals")
    return signal_create_unchecked(name=name, kind=kind, policy=policy, output_type=output_type,
                                   score_label=score_label, description=description, owner=owner or acting_user,
                                   acting_user=acting_user)


def signal_create_unchecked(*, name: str, kind: str, policy: Policy, output_type: str, score_label: str,
                            description: str, owner: AbstractBaseUser | None,
                            acting_user: AbstractBaseUser | None) -> Signal:
    """``signal_create`` without the permission check, for services that already checked one
    (or act for the system). Runs inside the caller's transaction."""
    signal_name_check(name)
    if kind not in SignalKind.values:
        raise SignalError(f"--kind: {kind!r}: use one of {', '.join(SignalKind.values)}")
    if output_type not in SignalOutputType.values:
        raise SignalError(f"--output: {output_type!r}: use one of {', '.join(SignalOutputType.values)}")
    reference = policy_version_published(policy=policy) or policy_version_get(slug=policy.slug)
    _check_score_label(output_type=output_type, score_label=score_label, taxonomy=taxonomy_of(reference),
                       where=str(reference))
    if Signal.objects.filter(name=name).exists():
        raise SignalExists(f"a signal named {name!r} exists; signal names are unique and never reused")
    signal = Signal.objects.create(name=name, kind=kind, policy=policy, output_type=output_type,
                                   score_label=score_label, description=description, owner=owner,
                                   created_by=acting_user)
    audit_event_record(actor=acting_user, event_type="signal.created", obj=signal,
                       details={"kind": kind, "policy": policy.slug, "output_type": output_type,
                                "score_label": score_label})
    return signal


@transaction.atomic(durable=True)
def signal_version_create(*, signal: Signal, acting_user: AbstractBaseUser, notes: str = "",
                          model_card_url: str = "", commit: str = "",
                          policy_version: PolicyVersion | None = None) -> SignalVersion:
    """The next version of ``signal`` (numbered 1, 2, …), without scores yet. Its labels come
    from ``policy_version`` (default: the policy's published version).

    Raises PermissionDenied and SignalError (a policy version of another policy, a bad URL, no
    published version)."""
    permission_require(acting_user, "evaluation.add_signalversion", to="create signal versions")
    return signal_version_create_unchecked(signal=signal, notes=notes, model_card_url=model_card_url, commit=commit,
                                           policy_version=policy_version, acting_user=acting_user)


def signal_version_create_unchecked(*, signal: Signal, notes: str, model_card_url: str, commit: str,
                                    policy_version: PolicyVersion | None, acting_user: AbstractBaseUser | None,
                                    created_by: AbstractBaseUser | None = None, labeling_run: LabelingRun | None = None,
                                    prompt_version: PromptVersion | None = None) -> SignalVersion:
    """``signal_version_create`` without the permission check. Runs inside the caller's transaction."""
    if policy_version is None:
        policy_version = policy_version_published(policy=signal.policy)
        if policy_version is None:
            raise SignalError(f"policy {signal.policy.slug!r} has no published version: name one with "
                              "--policy-version")
    if policy_version.policy_id != signal.policy_id:
        raise SignalError(f"--policy-version: {policy_version} is not a version of {signal.policy.slug!r}, "
                          f"the policy of signal {signal.name!r}")
    if signal.output_type == SignalOutputType.SCORE:
        _check_score_label(output_type=signal.output_type, score_label=signal.score_label,
                           taxonomy=taxonomy_of(policy_version), where=str(policy_version))
    if model_card_url:
        try:
            URLValidator(schemes=["http", "https"])(model_card_url)
        except ValidationError:
            raise SignalError(f"--model-card: {model_card_url!r} is not an http(s) URL") from None
    if len(commit) > SignalVersion._meta.get_field("commit").max_length:
        raise SignalError("--commit: longer than 100 characters")
    locked = Signal.objects.select_for_update().get(pk=signal.pk)  # numbers: a row lock on PostgreSQL,
    number = (locked.versions.aggregate(n=Max("number"))["n"] or 0) + 1  # the unique constraint on SQLite
    version = SignalVersion.objects.create(
        signal=locked, number=number, policy_version=policy_version, notes=notes, model_card_url=model_card_url,
        commit=commit, labeling_run=labeling_run, prompt_version=prompt_version,
        created_by=created_by if created_by is not None else acting_user)
    audit_event_record(actor=acting_user, event_type="signal_version.created", obj=version,
                       details={"policy_version": str(policy_version), "commit": commit,
                                "labeling_run": labeling_run.name if labeling_run else None,
                                "prompt_version": prompt_version.sha256 if prompt_version else None})
    return version
