"""After every migrate: make the built-in prompt templates match their files (idempotent)."""

from __future__ import annotations

from typing import Any

from policies.services import prompt_templates_sync


def after_migrate(**kwargs: Any) -> None:
    prompt_templates_sync()
