"""Signal scores in: files (JSONL, CSV, Parquet) through ``signal_scores_import``, API batches
through ``signal_scores_add``. Both stream in batches, resolve items by (source, external id),
refuse bad rows at their line, list unknown items, and never store two scores of one item in
one version. Scores are write-once (see evaluation.models).

A file's batch without a bad row (a clean Parquet batch is checked by column) first takes a fast
path, ``_clean_batch_insert``: one executemany resolving each item inside the insert. If any row
was not stored (an unknown item, a duplicate), that is undone and the batch goes row by row, which
reports exactly what it always did; after such a batch the next one goes row by row directly."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, reset_queries, transaction
from django.utils import timezone

from content.contentfile import batched
from content.models import ContentItem, ImportJob
from content.services.imports import import_job_run
from evaluation.models import SignalScore, SignalScoreImport, SignalVersion
from evaluation.scorefile import (
    ParsedScore,
    ScoreColumns,
    ScoreFileError,
    ScoreRules,
    file_format,
    parse_score_object,
    read_score_batches,
)
from evaluation.services.signals import taxonomy_of
from touchstone.audit import audit_event_record
from touchstone.errors import ApplicationError, LocatedError
from touchstone.lines import LineError
from touchstone.roles import permission_require

BATCH_ROWS = 10_000
API_MAX_ROWS = 10_000  # rows per POST: one transaction each, well inside a request's time
MAX_ERRORS_KEPT = 200
MAX_UNKNOWN_LISTED = 100
ITEM_CHUNK = 5_000  # keys per IN (...): well under SQLite's variable limit

SCORE_COLUMNS = ("version_id", "item_id", "score", "label", "observed_at")
INSERT_SQL = (f"INSERT INTO {SignalScore._meta.db_table} ({', '.join(SCORE_COLUMNS)}) "
              f"VALUES ({', '.join(['%s'] * len(SCORE_COLUMNS))})")


def _known_insert_sql() -> str:
    """One row per execution, its item found by (source, external id) in the same statement,
    parameters (version, source, external id, score, label, observed_at); a row whose item is
    unknown or already scored in the version inserts nothing. On SQLite a scalar subquery in
    VALUES with OR IGNORE (an INSERT ... SELECT inside a savepoint costs SQLite a statement
    journal, 2-3x slower); on PostgreSQL an INSERT ... SELECT."""
    table, items, columns = SignalScore._meta.db_table, ContentItem._meta.db_table, ", ".join(SCORE_COLUMNS)
    if connection.vendor == "sqlite":
        return (f"INSERT OR IGNORE INTO {table} ({columns}) VALUES "
                f"(%s, (SELECT id FROM {items} WHERE source = %s AND external_id = %s), %s, %s, %s)")
    return (f"INSERT INTO {table} ({columns}) SELECT v, id, score, label, observed_at::timestamptz "
            f"FROM (VALUES (%s, %s, %s, %s::double precision, %s, %s)) AS p(v, source, external_id, score, label, "
            f"observed_at) JOIN {items} USING (source, external_id) ON CONFLICT (version_id, item_id) DO NOTHING")


class ScoresConflict(LocatedError):
    code = "conflict"
    status = 409


class ScoreRowsInvalid(ApplicationError):
    """Bad rows of an API batch: ``extra`` lists them as ``{index, field, reason}`` (the first
    ``MAX_ERRORS_KEPT``), and names the first one's ``index`` and ``field``."""

    code = "invalid_rows"
    status = 400

    def __init__(self, errors: list[LineError], *, total: int) -> None:
        listed = [{"index": e.line, "field": e.field, "reason": e.reason} for e in errors[:MAX_ERRORS_KEPT]]
        first = listed[0]
        where = f"rows[{first['index']}]" + (f".{first['field']}" if first["field"] else "")
        more = f" (and {total - 1} more bad rows)" if total > 1 else ""
        super().__init__(f"{where}: {first['reason']}{more}; nothing was stored",
                         extra={"index": first["index"], "field": first["field"], "errors": listed,
                                "bad_rows": total})


@dataclass
class _ImportState:
    """Counters of one import; memory bounded by the lists' caps, not by the file."""

    had_scores: bool
    lines_read: int = 0
    imported: int = 0
    duplicates: int = 0
    rejected: int = 0
    unknown: int = 0
    batches: int = 0
    unknown_items: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


def score_rules(version: SignalVersion) -> ScoreRules:
    return ScoreRules(output_type=version.signal.output_type, taxonomy=frozenset(taxonomy_of(version.policy_version)))


def _in_chunks(sql: str, first: list[Any], keys: list[Any]) -> Iterator[tuple]:
    """Rows of ``sql`` (ending in ``IN ({})``) for ``keys``, ITEM_CHUNK keys per query. Raw: the
    ORM's per-parameter work on a 5,000-key IN costs more than the lookup itself."""
    with connection.cursor() as cursor:
        for start in range(0, len(keys), ITEM_CHUNK):
            chunk = keys[start:start + ITEM_CHUNK]
            cursor.execute(sql.format(", ".join(["%s"] * len(chunk))), [*first, *chunk])
            yield from cursor.fetchall()


def _item_ids(keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Item ids by (source, external id), through the (source, external_id) unique index."""
    by_source: dict[str, list[str]] = defaultdict(list)
    for source, external_id in keys:
        by_source[source].append(external_id)
    sql = f"SELECT external_id, id FROM {ContentItem._meta.db_table} WHERE source = %s AND external_id IN ({{}})"
    return {(source, external_id): pk for source, external_ids in by_source.items()
            for external_id, pk in _in_chunks(sql, [source], external_ids)}


def _stored_item_ids(version: SignalVersion, item_ids: list[int]) -> set[int]:
    sql = f"SELECT item_id FROM {SignalScore._meta.db_table} WHERE version_id = %s AND item_id IN ({{}})"
    return {item_id for (item_id,) in _in_chunks(sql, [version.pk], item_ids)}


def _datetime_adapter() -> Callable[[datetime], Any]:
    """Aware datetimes as the database column takes them. On SQLite that is Django's stored text
    (UTC, no offset), made here directly: Django's adapter reads its settings on every call,
    which at a million rows costs more than the insert."""
    if connection.vendor == "sqlite":
        return lambda when: when.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
    return connection.ops.adapt_datetimefield_value


class _StoredBefore(Exception):
    """Some rows of an optimistic insert were already stored: roll its savepoint back."""


def scores_insert(version: SignalVersion, rows: list[tuple[int, float | None, str, Any]], *, path: str,
                  optimistic: bool = False) -> None:
    """Append (item id, score, label, observed_at) rows to ``version``: one raw ``executemany``,
    since the ORM's per-object work would cost more than the insert. Runs inside a transaction.

    ``optimistic``: insert skipping conflicts, and if any row was already stored, undo the
    insert and raise _StoredBefore, so that the caller can find and report the duplicates."""
    if not rows:
        return
    adapt = _datetime_adapter()
    params = [(version.pk, item_id, score, label, adapt(when) if when is not None else None)
              for item_id, score, label, when in rows]
    sql = INSERT_SQL + (" ON CONFLICT (version_id, item_id) DO NOTHING" if optimistic else "")
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(sql, params)
            if optimistic and cursor.rowcount != len(params):
                raise _StoredBefore
    except IntegrityError as exc:
        raise ScoresConflict(f"another import stored scores of the same items in {version} meanwhile ({exc}); "
                             "run this one again: the items stored by then are reported as duplicates",
                             path=path) from exc


def _split(version: SignalVersion, known: list[tuple[ParsedScore, int]], stored: set[int],
           path: str) -> tuple[list[tuple[int, float | None, str, Any]], list[LineError]]:
    """(rows to insert, duplicates): an item stored before, or seen earlier in ``known``."""
    seen: dict[int, int] = {}
    fresh: list[tuple[int, float | None, str, Any]] = []
    duplicates: list[LineError] = []
    for row, item_id in known:
        if item_id in stored or item_id in seen:
            earlier = f"line {seen[item_id]}" if item_id in seen else "stored before"
            duplicates.append(LineError(path, row.line, "external_id",
                                        f"duplicate: {version} already has a score of {row.source}:"
                                        f"{row.external_id} ({earlier})"))
            continue
        seen[item_id] = row.line
        fresh.append((item_id, row.score, row.label, row.observed_at))
    return fresh, duplicates


def _clean_batch_insert(version: SignalVersion, batch: ScoreColumns | list[ParsedScore]) -> bool:
    """The fast path of a batch without a bad row: insert every row at once, each resolving its
    item in the insert itself (no lookup round trip, no per-row Python objects). Succeeds, and
    returns True, only if every row was stored, i.e. every item exists and none is scored yet
    in this version (nor twice in the batch); otherwise it undoes itself and returns False, and the
    batch takes the row-by-row path, which reports the unknown items and duplicates. Runs inside
    a transaction."""
    if isinstance(batch, ScoreColumns):
        sources, external_ids, scores, labels = batch.sources(), batch.external_ids(), batch.scores(), batch.labels()
        observed = batch.observed_at_text(utc_suffix="+00:00" if connection.vendor == "postgresql" else "")
    else:
        _, sources, external_ids, scores, labels, times = zip(*batch, strict=True)
        adapt = _datetime_adapter()
        observed = [adapt(when) if when is not None else None for when in times]
    params = list(zip(repeat(version.pk), sources, external_ids, scores, labels, observed, strict=False))
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(_known_insert_sql(), params)
            if cursor.rowcount != len(params):
                raise _StoredBefore
    except _StoredBefore:
        return False
    return True


def _write_batch(*, version: SignalVersion, batch: list[ParsedScore], state: _ImportState, path: str,
                 rejects: list[LineError]) -> None:
    """Runs inside a transaction: store one batch's new scores of known items; count and list
    unknown items; add duplicates (in this version already, or earlier in this import) to ``rejects``.

    Duplicates are rare, so the batch is inserted first, skipping conflicts; only when some row
    was already stored is the insert undone and the stored items looked up."""
    ids = _item_ids({(row.source, row.external_id) for row in batch})
    known: list[tuple[ParsedScore, int]] = []
    for row in batch:
        item_id = ids.get((row.source, row.external_id))
        if item_id is not None:
            known.append((row, item_id))
            continue
        state.unknown += 1
        if len(state.unknown_items) < MAX_UNKNOWN_LISTED:
            state.unknown_items.append({"source": row.source, "external_id": row.external_id, "line": row.line})
    fresh, duplicates = _split(version, known, set(), path)
    try:
        scores_insert(version, fresh, path=path, optimistic=True)
    except _StoredBefore:
        fresh, duplicates = _split(version, known, _stored_item_ids(version, [i for _, i in known]), path)
        scores_insert(version, fresh, path=path)
    rejects.extend(duplicates)
    state.imported += len(fresh)
    state.batches += 1


def _save_counters(job: SignalScoreImport, state: _ImportState) -> None:
    SignalScoreImport.objects.filter(pk=job.pk).update(
        lines_read=state.lines_read, imported=state.imported, duplicates=state.duplicates, rejected=state.rejected,
        unknown=state.unknown, unknown_items=state.unknown_items, errors=state.errors[:MAX_ERRORS_KEPT])


def _whole_file_errors(records: Iterator[Any]) -> Iterator[Any]:
    try:
        yield from records
    except ScoreFileError as error:
        raise LocatedError(error.reason, path=error.path, line=error.line, field=error.field) from None


def signal_scores_import(*, path: Path, version: SignalVersion, acting_user: AbstractBaseUser, strict: bool = False,
                         fmt: str | None = None, batch_size: int = BATCH_ROWS,
                         on_progress: Callable[[int], None] | None = None,
                         on_error: Callable[[LineError], None] | None = None) -> SignalScoreImport:
    """Import the scores of ``version`` from a JSONL, CSV or Parquet file (format from the suffix
    unless ``fmt``), in batches of ``batch_size`` rows.

    A bad row (malformed, a score outside [0, 1], a label outside the version's taxonomy, the
    output type's field missing, an item already scored in this version) is reported as
    ``PATH:LINE: field: reason`` and skipped; each batch commits on its own. With ``strict`` the
    first bad row raises LocatedError and nothing of the file is kept. Rows naming an item that
    does not exist are not errors: they are counted and the first ``MAX_UNKNOWN_LISTED`` listed
    on the returned import. ``on_progress`` gets the rows read so far.

    Raises PermissionDenied, LocatedError (a bad row with ``strict``; a file that cannot be
    opened or read as a whole, which also marks the import failed) and ScoresConflict."""
    permission_require(acting_user, "evaluation.add_signalscore", to="import signal scores")
    try:
        kind = file_format(path, fmt)
        handle = path.open("rb") if kind == "parquet" else path.open(encoding="utf-8", newline="")
    except ScoreFileError as error:
        raise LocatedError(error.reason, path=error.path, field=error.field) from None
    except OSError as exc:
        raise LocatedError(f"cannot open: {exc.strerror or exc}", path=str(path)) from exc
    rules = score_rules(version)
    job = SignalScoreImport.objects.create(version=version, path=str(path), strict=strict, started_by=acting_user)
    state = _ImportState(had_scores=version.has_scores())

    def reject(error: LineError) -> None:
        if strict:
            raise LocatedError(error.reason, path=error.path, line=error.line, field=error.field)
        if error.reason.startswith("duplicate:"):
            state.duplicates += 1
        else:
            state.rejected += 1
        if len(state.errors) < MAX_ERRORS_KEPT:
            state.errors.append({"line": error.line, "field": error.field, "reason": error.reason})
        if on_error:
            on_error(error)

    fast = [True]  # whether the next clean batch tries the fast path: not right after unknowns or duplicates

    def process(chunks: list[ScoreColumns | list[ParsedScore | LineError]]) -> None:
        for chunk in chunks:  # one batch of ``batch_size`` rows
            state.lines_read += len(chunk)
            with transaction.atomic():
                clean = isinstance(chunk, ScoreColumns) or not any(isinstance(r, LineError) for r in chunk)
                if clean and fast[0] and chunk and _clean_batch_insert(version, chunk):  # type: ignore[arg-type]
                    state.imported += len(chunk)
                    state.batches += 1
                else:
                    rows = chunk.rows() if isinstance(chunk, ScoreColumns) else chunk
                    good: list[ParsedScore] = []
                    rejects: list[LineError] = []
                    for record in rows:
                        (rejects if isinstance(record, LineError) else good).append(record)  # type: ignore[arg-type]
                    unknown_before = state.unknown
                    _write_batch(version=version, batch=good, state=state, path=str(path), rejects=rejects)
                    fast[0] = state.unknown == unknown_before and not any(
                        e.reason.startswith("duplicate:") for e in rejects)
                    for error in sorted(rejects, key=lambda e: e.line or 0):
                        reject(error)
                if not strict:
                    _save_counters(job, state)
            reset_queries()
            if on_progress:
                on_progress(state.lines_read)

    records = _whole_file_errors(read_score_batches(handle, fmt=kind, path=str(path), rules=rules,
                                                    batch_rows=batch_size))
    return import_job_run(job, path=path, handle=handle, records=records, strict=strict, batch_size=1,
                          process=process, save_counters=lambda: _save_counters(job, state),
                          event_type="signal_scores.imported", acting_user=acting_user)


@transaction.atomic(durable=True)
def signal_scores_add(*, version: SignalVersion, rows: list[Any], acting_user: AbstractBaseUser) -> SignalScoreImport:
    """Add one batch of score rows (JSON objects, at most ``API_MAX_ROWS``) to ``version``, all
    or nothing: any bad row (as in ``signal_scores_import``, located by its 0-based index)
    raises ScoreRowsInvalid listing every bad row, and nothing is stored. Unknown items are
    counted and listed on the returned import, not errors.

    Raises PermissionDenied, ScoreRowsInvalid and ScoresConflict."""
    permission_require(acting_user, "evaluation.add_signalscore", to="add signal scores")
    if len(rows) > API_MAX_ROWS:
        raise ScoreRowsInvalid([LineError("rows", API_MAX_ROWS, None,
                                          f"{len(rows)} rows: send at most {API_MAX_ROWS} per request")], total=1)
    rules = score_rules(version)
    state = _ImportState(had_scores=version.has_scores(), lines_read=len(rows))
    job = SignalScoreImport.objects.create(version=version, path="api", strict=True, started_by=acting_user)
    errors: list[LineError] = []
    good: list[ParsedScore] = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            errors.append(LineError("rows", index, None, "expected a JSON object"))
            continue
        try:
            good.append(parse_score_object(row, rules=rules, path="rows", line=index))
        except LineError as error:
            errors.append(error)
    for batch in batched(good, BATCH_ROWS):
        _write_batch(version=version, batch=batch, state=state, path="api", rejects=errors)
    if errors:
        raise ScoreRowsInvalid(sorted(errors, key=lambda e: e.line or 0), total=len(errors))
    _save_counters(job, state)
    SignalScoreImport.objects.filter(pk=job.pk).update(status=ImportJob.Status.FINISHED, finished_at=timezone.now())
    job.refresh_from_db()
    audit_event_record(actor=acting_user, event_type="signal_scores.added", obj=job,
                       details={"version": str(version), "imported": job.imported, "unknown": job.unknown})
    return job
