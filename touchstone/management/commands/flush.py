"""Django's flush, past the immutability triggers: wiping a whole database is the one deliberate
way to remove frozen and audited rows (tests that reset the database use it too)."""

from typing import Any

from django.core.management.commands.flush import Command as DjangoFlush

from touchstone.immutability import immutability_override


class Command(DjangoFlush):
    def handle(self, **options: Any) -> None:
        with immutability_override("manage.py flush", using=options["database"]):
            super().handle(**options)
