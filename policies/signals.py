"""After every migrate: give the role groups their permissions and sync built-in templates.

Permissions only exist after ``post_migrate``, so a data migration cannot grant them on a
fresh database; this handler is idempotent.
"""

from __future__ import annotations

from typing import Any


def after_migrate(**kwargs: Any) -> None:
    from policies.services import prompt_templates_sync, role_groups_grant_permissions

    role_groups_grant_permissions()
    prompt_templates_sync()
