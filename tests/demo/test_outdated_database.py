"""`make demo` on a `.state/` made before the apps were split says to run `make clean`."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

pytestmark = pytest.mark.django_db


def test_a_database_with_the_retired_labeling_app_is_refused_with_what_to_do() -> None:
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO django_migrations (app, name, applied) VALUES ('labeling', '0001_initial', "
                       "CURRENT_TIMESTAMP)")
    with pytest.raises(CommandError, match=r"retired app labeling.*run `make clean`"):
        call_command("demo", "--exit-when-ready")


def test_the_current_layout_passes_the_check() -> None:
    from demo.setup import database_layout_check

    database_layout_check()  # raises OutdatedDatabase on an old layout
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM django_migrations WHERE app IN ('content', 'runs', 'review')")
        assert cursor.fetchone()[0] >= 3
