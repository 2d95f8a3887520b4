"""Celery tasks for policies: thin shells over services. Payloads are ids and plain JSON."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.contrib.auth import get_user_model
from django.db import OperationalError

from policies.compiler import ModelSettings
from policies.models import PolicyVersion
from policies.services import prompt_version_compile_all
from touchstone.retry import TASK_RETRY


@shared_task(acks_late=True, autoretry_for=(OperationalError,), max_retries=5, **TASK_RETRY)
def prompt_version_compile_all_task(policy_version_id: int, settings: dict[str, Any],
                                    acting_user_id: int | None = None) -> list[str]:
    """Compile a policy version with every template. Idempotent: prompts are content-addressed."""
    version = PolicyVersion.objects.select_related("policy").get(pk=policy_version_id)
    user = get_user_model().objects.filter(pk=acting_user_id).first() if acting_user_id else None
    results = prompt_version_compile_all(policy_version=version, settings=ModelSettings(**settings),
                                         acting_user=user)
    return [prompt_version.sha256 for prompt_version, _ in results]
