"""Checks a policy version must pass before it is published, registered by the apps above.

``policies`` sits below the apps that measure prompts (``evaluation``) and must not import them;
those apps register a check here instead, in their ``AppConfig.ready()``, and
``policy_version_publish`` runs every registered check. A check returns None when it does not
apply (e.g. the policy has no publish gate) or a :class:`PrepublishVerdict`.

A policy that has a publish gate while no check named ``publish_gate`` is registered fails
closed: nothing here can tell whether the gate passes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from policies.models import PolicyVersion

PUBLISH_GATE = "publish_gate"


@dataclass(frozen=True)
class PrepublishVerdict:
    """One check's verdict. ``message``: one line saying what passed, failed or is missing;
    ``rows``: (label, text, link or "") lines for the approver's confirmation page; ``details``:
    plain JSON, recorded in the publish audit event."""

    check: str
    passed: bool
    message: str
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"check": self.check, "passed": self.passed, "message": self.message, "details": self.details}


PrepublishCheck = Callable[[PolicyVersion, AbstractBaseUser | None], PrepublishVerdict | None]
_CHECKS: dict[str, PrepublishCheck] = {}


def prepublish_check_register(name: str, check: PrepublishCheck) -> None:
    """Register (or replace: ``ready()`` may run twice) the check called ``name``."""
    _CHECKS[name] = check


def prepublish_checks_run(*, version: PolicyVersion, acting_user: AbstractBaseUser | None) -> list[PrepublishVerdict]:
    """Every registered check's verdict on ``version`` (checks that do not apply give none).

    Runs outside any transaction: a check may store what it computed (e.g. a comparison)."""
    verdicts = [v for name in sorted(_CHECKS) if (v := _CHECKS[name](version, acting_user)) is not None]
    if version.policy.publish_gate and PUBLISH_GATE not in _CHECKS:
        verdicts.append(PrepublishVerdict(
            check=PUBLISH_GATE, passed=False,
            message=f"policy {version.policy.slug} has a publish gate but no app that computes its verdict is "
                    "installed"))
    return verdicts
