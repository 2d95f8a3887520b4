"""Read signal-score files (pure: no Django): JSONL, CSV or Parquet rows
``{"source", "external_id", "score" | "label", "observed_at"?}``.

Conventions:
- ``score`` is a number in [0, 1] (NaN, infinities and booleans refused); ``label`` a key of the
  signal version's taxonomy. A label signal needs ``label`` on every row and may give ``score``
  (its confidence in that label); a score signal needs ``score`` and may give ``label``.
- ``observed_at`` is optional: ISO 8601 with a time zone (a Parquet ``timestamp`` column needs
  its time zone too), inside the believable window of ``touchstone.timewindow``.
- Each row is located by its line: the JSONL line, the CSV record's last physical line (the
  header is line 1), the Parquet row number (1 for the first row). Every bad row becomes a
  ``LineError`` (``PATH:LINE: field: reason``); a file that cannot be read as a whole (unknown
  format, missing or unknown columns) raises ``ScoreFileError``.
Readers stream: a file of any size costs one batch of rows in memory.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import IO, Any, NamedTuple

from touchstone.lines import LineError, parsed_json_lines
from touchstone.timewindow import label_time_problem

FORMATS = ("jsonl", "csv", "parquet")
SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
FIELDS = ("source", "external_id", "score", "label", "observed_at")
MAX_SOURCE, MAX_EXTERNAL_ID, MAX_LABEL = 100, 255, 63
PARQUET_BATCH_ROWS = 10_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ScoreFileError(LineError):
    """The file as a whole cannot be read (format, columns): nothing of it is imported."""


class ParsedScore(NamedTuple):
    line: int
    source: str
    external_id: str
    score: float | None
    label: str
    observed_at: datetime | None


@dataclass(frozen=True)
class ScoreRules:
    """What a row must say: ``output_type`` is ``label`` or ``score``; ``taxonomy`` the label keys."""

    output_type: str
    taxonomy: frozenset[str]
    now: datetime = field(default_factory=lambda: datetime.now(UTC))  # the end of the believable window


def file_format(path: Path, given: str | None = None) -> str:
    """The format named by ``given``, else by the file's suffix. Raises ScoreFileError."""
    if given:
        if given not in FORMATS:
            raise ScoreFileError(str(path), None, "--format", f"{given!r}: use one of {', '.join(FORMATS)}")
        return given
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ScoreFileError(str(path), None, None, f"unknown file type {path.suffix!r}: name it .jsonl, .csv or "
                                                    ".parquet, or pass --format")
    return fmt


def _key(value: Any, field: str, max_length: int, path: str, line: int) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise LineError(path, line, field, "missing")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise LineError(path, line, field, "must be a string")
    text = str(value).strip()
    if len(text) > max_length:
        raise LineError(path, line, field, f"longer than {max_length} characters")
    return text


def _score(value: Any, path: str, line: int) -> float | None:
    if value is None or value == "":
        return None
    shown = value.strip() if isinstance(value, str) else repr(value)  # as the file wrote it
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise LineError(path, line, "score", f"{shown!r} is not a number") from None
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise LineError(path, line, "score", "must be a number")
    score = float(value)
    if not math.isfinite(score) or not 0.0 <= score <= 1.0:
        raise LineError(path, line, "score", f"{shown} is outside [0, 1]")
    return score


def _label(value: Any, rules: ScoreRules, path: str, line: int) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise LineError(path, line, "label", "must be a string")
    if value not in rules.taxonomy:
        shown = value if len(value) <= MAX_LABEL else value[:MAX_LABEL] + "…"
        raise LineError(path, line, "label", f"{shown!r} is not in the taxonomy (allowed: "
                                             f"{', '.join(sorted(rules.taxonomy))})")
    return value


def _observed_at(value: Any, rules: ScoreRules, path: str, line: int) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise LineError(path, line, "observed_at", f"{value!r} is not an ISO 8601 date-time") from None
    else:
        raise LineError(path, line, "observed_at", "must be an ISO 8601 date-time string")
    problem = label_time_problem(when, now=rules.now)
    if problem:
        raise LineError(path, line, "observed_at", problem)
    return when


def parse_score_row(source: Any, external_id: Any, score: Any, label: Any, observed_at: Any, *, rules: ScoreRules,
                    path: str, line: int) -> ParsedScore:
    """One row's values checked against ``rules``. Raises LineError naming the first bad field."""
    parsed = ParsedScore(line, _key(source, "source", MAX_SOURCE, path, line),
                         _key(external_id, "external_id", MAX_EXTERNAL_ID, path, line), _score(score, path, line),
                         _label(label, rules, path, line), _observed_at(observed_at, rules, path, line))
    if rules.output_type == "label" and not parsed.label:
        raise LineError(path, line, "label", "missing: this signal gives a label on every row")
    if rules.output_type == "score" and parsed.score is None:
        raise LineError(path, line, "score", "missing: this signal gives a score on every row")
    return parsed


def parse_score_object(data: dict[str, Any], *, rules: ScoreRules, path: str, line: int) -> ParsedScore:
    """One JSON object (a JSONL line, an API row). Raises LineError."""
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise LineError(path, line, unknown[0], f"unknown field; allowed: {', '.join(FIELDS)}")
    return parse_score_row(data.get("source"), data.get("external_id"), data.get("score"), data.get("label"),
                           data.get("observed_at"), rules=rules, path=path, line=line)


def _check_columns(columns: list[str], path: str, line: int | None) -> None:
    unknown = [c for c in columns if c not in FIELDS]
    if unknown:
        raise ScoreFileError(path, line, unknown[0], f"unknown column; allowed: {', '.join(FIELDS)}")
    missing = [c for c in ("source", "external_id") if c not in columns]
    if missing:
        raise ScoreFileError(path, line, missing[0], "missing column")
    if "score" not in columns and "label" not in columns:
        raise ScoreFileError(path, line, "score", "missing column: a file needs a score or a label column")


def read_jsonl(handle: IO[str], *, path: str, rules: ScoreRules) -> Iterator[ParsedScore | LineError]:
    return parsed_json_lines(handle, path=path,
                             parse=lambda data, line: [parse_score_object(data, rules=rules, path=path, line=line)])


def read_csv(handle: IO[str], *, path: str, rules: ScoreRules) -> Iterator[ParsedScore | LineError]:
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None:
        return
    columns = [c.strip() for c in header]
    _check_columns(columns, path, 1)
    index = {c: i for i, c in enumerate(columns)}
    positions = [index.get(name) for name in FIELDS]
    for record in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(columns):
            yield LineError(path, line, None, f"{len(record)} cells, the header has {len(columns)}")
            continue
        try:
            yield parse_score_row(*(record[p] if p is not None else None for p in positions), rules=rules,
                                  path=path, line=line)
        except LineError as error:
            yield error


class ScoreColumns:
    """A clean batch of Parquet rows, as columns: every row would pass ``parse_score_row``
    unchanged (checked by ``_batch_is_clean``), so no row of it can be reported as bad. Its rows
    are lines ``first_line`` to ``first_line + len - 1``. Columns come out as Python lists made
    through numpy (an order of magnitude faster than pyarrow's own ``to_pylist``)."""

    def __init__(self, batch: Any, first_line: int) -> None:
        self.batch = batch
        self.first_line = first_line

    def __len__(self) -> int:
        return self.batch.num_rows

    def _column(self, name: str) -> Any:
        return self.batch.column(name) if name in self.batch.schema.names else None

    def _values(self, name: str, fill: Any) -> list[Any]:
        column = self._column(name)
        if column is None:
            return [fill] * len(self)
        if column.null_count:
            if fill is not None:
                import pyarrow.compute as pc

                return _as_list(pc.fill_null(column, fill))
            return column.to_pylist()
        return _as_list(column)

    def sources(self) -> list[str]:
        return _as_list(self.batch.column("source"))

    def external_ids(self) -> list[str]:
        return _as_list(self.batch.column("external_id"))

    def scores(self) -> list[float | None]:
        return self._values("score", None)

    def labels(self) -> list[str]:
        return self._values("label", "")

    def observed_at_text(self, *, utc_suffix: str = "") -> list[str | None]:
        """``observed_at`` in UTC as ``datetime.isoformat(" ")`` writes a naive datetime (no
        fraction when the microseconds are 0), followed by ``utc_suffix`` (e.g. ``+00:00``)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        column = self._column("observed_at")
        if column is None:
            return [None] * len(self)
        text = column.cast(pa.timestamp("us", tz=column.type.tz)).cast(pa.timestamp("us")).cast(pa.string())
        text = pc.replace_substring_regex(text, pattern=r"\.000000$", replacement="")
        if utc_suffix:
            text = pc.binary_join_element_wise(text, pa.scalar(utc_suffix), "")
        return _as_list(text) if not text.null_count else text.to_pylist()

    def rows(self) -> list[ParsedScore]:
        """The same rows as ParsedScore tuples (what the row-by-row path takes)."""
        values = [_column_values(self.batch.column(name)) if name in self.batch.schema.names else None
                  for name in FIELDS]
        blank = [None] * len(self)
        sources, ids, scores, labels, times = (v if v is not None else blank for v in values)
        labels = [label or "" for label in labels]
        return list(map(ParsedScore, range(self.first_line, self.first_line + len(self)), sources, ids, scores,
                        labels, times))


def _as_list(column: Any) -> list[Any]:
    return column.to_numpy(zero_copy_only=False).tolist()


ScoreBatch = ScoreColumns | list[ParsedScore | LineError]


def read_parquet_batches(handle: IO[bytes], *, path: str, rules: ScoreRules,
                         batch_rows: int = PARQUET_BATCH_ROWS) -> Iterator[ScoreBatch]:
    """The file in batches of exactly ``batch_rows`` rows (the last one may be shorter), read with
    pyarrow's batch reader: a clean batch as ScoreColumns, any other as its parsed rows and
    LineErrors, in order. The line is the row number."""
    import pyarrow as pa  # heavy; only Parquet imports need it
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(handle)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a file that is not Parquet
        raise ScoreFileError(path, None, None, f"not a Parquet file: {exc}") from None
    columns = list(parquet.schema_arrow.names)
    _check_columns(columns, path, None)
    read = 0  # rows read from the file so far
    row = 0  # rows handed out so far
    pending: list[Any] = []
    pending_rows = 0
    batches = parquet.iter_batches(batch_size=batch_rows, columns=columns)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            batch = None
        except (pa.ArrowException, OSError) as exc:
            raise ScoreFileError(path, read + 1, None, f"unreadable Parquet data: {exc}") from None
        if batch is not None:
            read += batch.num_rows
            if not batch.num_rows:
                continue
            pending.append(batch)
            pending_rows += batch.num_rows
        while pending_rows >= batch_rows or (batch is None and pending_rows):
            if len(pending) == 1 and pending_rows <= batch_rows:
                chunk, pending, pending_rows = pending[0], [], 0
            else:
                table = pa.Table.from_batches(pending)
                size = min(batch_rows, pending_rows)
                chunk = table.slice(0, size).combine_chunks().to_batches()[0]
                rest = table.slice(size)
                pending = rest.combine_chunks().to_batches() if rest.num_rows else []
                pending_rows -= size
            yield _parsed_batch(chunk, rules, path=path, first_line=row + 1)
            row += chunk.num_rows
        if batch is None:
            return


def _parsed_batch(batch: Any, rules: ScoreRules, *, path: str,
                  first_line: int) -> ScoreBatch:
    if _batch_is_clean(batch, rules):  # the common case: checked by column, no per-row work
        return ScoreColumns(batch, first_line)
    values = [_column_values(batch.column(name)) if name in batch.schema.names else None for name in FIELDS]
    blank = [None] * batch.num_rows
    sources, ids, scores, labels, times = (v if v is not None else blank for v in values)
    records: list[ParsedScore | LineError] = []
    for line, (source, external_id, score, label, observed_at) in enumerate(
            zip(sources, ids, scores, labels, times, strict=True), start=first_line):
        try:
            records.append(parse_score_row(source, external_id, score, label, observed_at, rules=rules, path=path,
                                           line=line))
        except LineError as error:
            records.append(error)
    return records


def read_parquet(handle: IO[bytes], *, path: str, rules: ScoreRules,
                 batch_rows: int = PARQUET_BATCH_ROWS) -> Iterator[ParsedScore | LineError]:
    """Row groups are read a batch at a time (pyarrow's batch reader); the line is the row number."""
    for chunk in read_parquet_batches(handle, path=path, rules=rules, batch_rows=batch_rows):
        yield from chunk.rows() if isinstance(chunk, ScoreColumns) else chunk


def _batch_is_clean(batch: Any, rules: ScoreRules) -> bool:
    """Whether every row of a Parquet batch would pass ``parse_score_row`` unchanged, checked with
    vectorised pyarrow compute; any doubt (a type other than the plain one) says no, and the
    batch is parsed row by row, which names the bad rows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    names = batch.schema.names
    for name, limit in (("source", MAX_SOURCE), ("external_id", MAX_EXTERNAL_ID)):
        keys = batch.column(name)
        if not pa.types.is_string(keys.type) or keys.null_count:
            return False
        lengths = pc.utf8_length(keys)
        if pc.min(lengths).as_py() == 0 or pc.max(lengths).as_py() > limit:
            return False
        if not pc.all(pc.equal(pc.utf8_trim_whitespace(keys), keys)).as_py():
            return False
    if "score" in names:
        scores = batch.column("score")
        if not pa.types.is_floating(scores.type):
            return False
        if rules.output_type == "score" and scores.null_count:
            return False
        present = pc.drop_null(scores)
        if len(present) and not pc.all(pc.and_(pc.greater_equal(present, 0.0), pc.less_equal(present, 1.0))).as_py():
            return False  # NaN compares false, so it lands here too
    elif rules.output_type == "score":
        return False
    if "label" in names:
        labels = batch.column("label")
        if not pa.types.is_string(labels.type):
            return False
        given = pc.drop_null(labels)
        if rules.output_type == "label" and (labels.null_count or not pc.all(pc.not_equal(labels, "")).as_py()):
            return False
        given = pc.filter(given, pc.not_equal(given, ""))
        if len(given) and not pc.all(pc.is_in(given, value_set=pa.array(sorted(rules.taxonomy)))).as_py():
            return False
    elif rules.output_type == "label":
        return False
    if "observed_at" in names:
        times = batch.column("observed_at")
        if not pa.types.is_timestamp(times.type) or times.type.tz is None:
            return False
        present = pc.drop_null(times)
        if len(present):
            earliest, latest = pc.min(present).as_py(), pc.max(present).as_py()
            if label_time_problem(earliest, now=rules.now) or label_time_problem(latest, now=rules.now):
                return False
    return True


def _column_values(column: Any) -> list[Any]:
    """A column as Python values. A timestamp column with a time zone becomes UTC datetimes
    built from its integers: pyarrow's own conversion looks the zone up again for every value."""
    import pyarrow as pa

    kind = column.type
    if not pa.types.is_timestamp(kind) or kind.tz is None:
        return column.to_pylist()
    micros = column.cast(pa.timestamp("us", tz=kind.tz)).cast(pa.int64()).to_pylist()
    return [None if value is None else EPOCH + timedelta(microseconds=value) for value in micros]


def read_scores(handle: IO[Any], *, fmt: str, path: str, rules: ScoreRules) -> Iterator[ParsedScore | LineError]:
    """The rows of an open file (text for jsonl and csv, binary for parquet)."""
    reader = {"jsonl": read_jsonl, "csv": read_csv, "parquet": read_parquet}[fmt]
    return reader(handle, path=path, rules=rules)


def read_score_batches(handle: IO[Any], *, fmt: str, path: str, rules: ScoreRules,
                       batch_rows: int) -> Iterator[ScoreBatch]:
    """The rows of an open file in batches of ``batch_rows`` rows (records): a clean Parquet batch
    as ScoreColumns, any other batch as a list of ParsedScore and LineError."""
    if fmt == "parquet":
        yield from read_parquet_batches(handle, path=path, rules=rules, batch_rows=batch_rows)
        return
    records = read_scores(handle, fmt=fmt, path=path, rules=rules)
    while batch := list(islice(records, batch_rows)):
        yield batch
