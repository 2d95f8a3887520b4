"""After every migrate: give the role groups their permissions.

Permissions only exist after ``post_migrate``, so a data migration cannot grant them on a
fresh database; this handler is idempotent.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib.auth.management import create_permissions

from touchstone.roles import role_groups_grant_permissions


def after_migrate(**kwargs: Any) -> None:
    # post_migrate reaches apps in INSTALLED_APPS order, so apps listed after this one have
    # no permissions yet: create them all first (idempotent), then grant.
    for app_config in apps.get_app_configs():
        create_permissions(app_config, verbosity=0)
    role_groups_grant_permissions()
