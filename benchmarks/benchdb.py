"""Shared set-up of the benchmarks' own databases (not a benchmark: ``make bench`` runs
``bench_*.py`` only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def migrate_and_publish_harassment() -> Any:
    """Migrate an empty database and publish the example harassment policy; returns the
    published PolicyVersion."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from policies.services import policy_import, policy_version_publish, policy_version_submit

    call_command("migrate", verbosity=0)
    users = get_user_model().objects
    author, approver = users.create_user("author"), users.create_superuser("approver")
    text = (ROOT / "policies" / "example_policies" / "harassment.md").read_text()
    version = policy_import(text=text, path="harassment.md", acting_user=author).version
    policy_version_submit(version=version, acting_user=author)
    return policy_version_publish(version=version, acting_user=approver)
