"""Raw reads and writes for the bulk paths (freeze, export), where the ORM's per-row work
costs more than the work itself. Portable across SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from django.db import connection


def iso_utc(value: str | datetime) -> str:
    """A stored timestamp as ISO 8601 UTC. SQLite hands back Django's stored text (UTC, no offset)."""
    if isinstance(value, str):
        return value.replace(" ", "T", 1) + "+00:00"
    if value.tzinfo is None:  # SQLite's converter: Django stores UTC without an offset
        return value.isoformat() + "+00:00"
    return value.astimezone(UTC).isoformat()


def json_text(value: object) -> str | None:
    """A JSON column as text: SQLite returns the stored text, PostgreSQL a decoded value."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def raw_row_batches(sql: str, params: Sequence[object], chunk: int = 10_000) -> Iterator[list[tuple]]:
    """``raw_rows`` a fetch at a time: lists of up to ``chunk`` rows, for loops that work per batch."""
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, list(params))
        while rows := cursor.fetchmany(chunk):
            yield rows


def raw_rows(sql: str, params: Sequence[object], chunk: int = 10_000) -> Iterator[tuple]:
    """Stream rows with a raw (server-side on PostgreSQL) cursor: the ORM's per-row conversions
    cost more than the freeze's own work at 100,000 items."""
    for rows in raw_row_batches(sql, params, chunk):
        yield from rows
