"""Database triggers that keep published, frozen and audited rows unchangeable, even by raw SQL.

The models refuse these changes in the ORM; the triggers refuse them in the database itself
(SQLite and PostgreSQL), so a ``bulk_create``, a raw ``UPDATE`` or a hand-made fix in a SQL shell
fails too. Migrations create the triggers with ``trigger_operations``; a later change to the rules
is a new migration, never an edit of one already applied.

The one way past them is a row in ``touchstone_immutability_override``, which
``immutability_override()`` writes for the length of a ``with`` block. Only ``manage.py flush``
(wiping the whole database) and tests that simulate a broken database use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connections, migrations

OVERRIDE_TABLE = "touchstone_immutability_override"

CREATE_OVERRIDE_TABLE = f"CREATE TABLE {OVERRIDE_TABLE} (reason VARCHAR(200) NOT NULL)"
DROP_OVERRIDE_TABLE = f"DROP TABLE {OVERRIDE_TABLE}"


@dataclass(frozen=True)
class Guard:
    """Refuse ``event`` (INSERT, UPDATE or DELETE) on ``table`` when ``condition`` holds.

    ``condition`` is SQL over ``NEW``/``OLD``; ``{distinct}`` stands for the null-safe
    "differs from" operator of the database (``IS NOT`` in SQLite, ``IS DISTINCT FROM`` in
    PostgreSQL)."""

    name: str
    table: str
    event: str
    condition: str
    message: str

    def _condition(self, vendor: str) -> str:
        distinct = "IS DISTINCT FROM" if vendor == "postgresql" else "IS NOT"
        return self.condition.format(distinct=distinct)

    def create_sql(self, vendor: str) -> list[str]:
        when = f"({self._condition(vendor)}) AND NOT EXISTS (SELECT 1 FROM {OVERRIDE_TABLE})"
        message = self.message.replace("'", "''")
        if vendor == "sqlite":
            return [f"CREATE TRIGGER {self.name} BEFORE {self.event} ON {self.table} FOR EACH ROW "
                    f"WHEN {when} BEGIN SELECT RAISE(ABORT, 'touchstone: {message}'); END"]
        if vendor == "postgresql":
            returned = "OLD" if self.event == "DELETE" else "NEW"
            return [
                f"CREATE FUNCTION {self.name}_fn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF {when} THEN RAISE EXCEPTION USING ERRCODE = 'integrity_constraint_violation', "
                f"MESSAGE = 'touchstone: {message}'; END IF; RETURN {returned}; END $$",
                f"CREATE TRIGGER {self.name} BEFORE {self.event} ON {self.table} FOR EACH ROW "
                f"EXECUTE FUNCTION {self.name}_fn()",
            ]
        raise NotImplementedError(f"no immutability triggers for the {vendor} database")

    def drop_sql(self, vendor: str) -> list[str]:
        if vendor == "postgresql":
            return [f"DROP TRIGGER IF EXISTS {self.name} ON {self.table}", f"DROP FUNCTION IF EXISTS {self.name}_fn()"]
        return [f"DROP TRIGGER IF EXISTS {self.name}"]


def _run(schema_editor, statements: list[str]) -> None:  # noqa: ANN001 - Django passes its schema editor
    for statement in statements:
        schema_editor.execute(statement, params=None)


def trigger_operations(guards: list[Guard]) -> list[migrations.RunPython]:
    """Migration operations creating (and, in reverse, dropping) the guards' triggers."""

    def create(apps, schema_editor) -> None:  # noqa: ANN001
        vendor = schema_editor.connection.vendor
        _run(schema_editor, [sql for guard in guards for sql in guard.create_sql(vendor)])

    def drop(apps, schema_editor) -> None:  # noqa: ANN001
        vendor = schema_editor.connection.vendor
        _run(schema_editor, [sql for guard in guards for sql in guard.drop_sql(vendor)])

    return [migrations.RunPython(create, drop, elidable=False)]


@contextmanager
def immutability_override(reason: str, *, using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Lets writes past the triggers inside the block. For wiping a database, never for a fix."""
    with connections[using].cursor() as cursor:
        cursor.execute(f"INSERT INTO {OVERRIDE_TABLE} (reason) VALUES (%s)", [reason[:200]])
    try:
        yield
    finally:
        with connections[using].cursor() as cursor:
            cursor.execute(f"DELETE FROM {OVERRIDE_TABLE} WHERE reason = %s", [reason[:200]])
