"""Reading a frame: opening files, globs, directories and URLs; validating a batch and giving
each row its uniform, size and stratum; reading drawn rows back. Pure: no Django."""

from __future__ import annotations

import fnmatch
import glob as globlib
import hashlib
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.fs as pafs

DESIGNS = ("uniform", "stratified", "score_weighted")
MISSING_STRATUM = "(missing)"
GLOB_CHARS = set("*?[")


class FrameError(ValueError):
    """Bad frame or design: ``PATH: row R: column C: reason`` (parts may be unknown)."""

    def __init__(self, reason: str, *, path: str | None = None, row: str | None = None,
                 column: str | None = None) -> None:
        self.path, self.row, self.column, self.reason = path, row, column, reason
        parts = [p for p in (path, row, f"column {column!r}" if column else None) if p]
        super().__init__(": ".join([*parts, reason]))


@dataclass(frozen=True)
class Design:
    """What to draw. ``kind`` is one of DESIGNS; the columns are the frame's."""

    kind: str
    size: int
    seed: int
    id_column: str = "id"
    weight_column: str | None = None
    stratify_by: str | None = None
    score_column: str | None = None
    floor: float = 0.01

    def check(self) -> None:
        if self.kind not in DESIGNS:
            raise FrameError(f"design {self.kind!r}: use one of {', '.join(DESIGNS)}")
        if self.size < 1:
            raise FrameError(f"sample size must be at least 1, got {self.size}")
        if self.kind == "stratified" and not self.stratify_by:
            raise FrameError("the stratified design needs --stratify-by COLUMN")
        if self.kind != "stratified" and self.stratify_by:
            raise FrameError("--stratify-by goes with --design stratified")
        if self.kind == "score_weighted":
            if not self.score_column:
                raise FrameError("the score-weighted design needs --score-column COLUMN")
            if not (self.floor > 0 and math.isfinite(self.floor)):
                raise FrameError("--floor must be a positive number so that every row can be drawn")
        elif self.score_column:
            raise FrameError("--score-column goes with --design score-weighted")

    @property
    def weighted(self) -> bool:
        return bool(self.weight_column) or self.kind == "score_weighted"

    def columns(self) -> list[str]:
        wanted = [self.id_column, self.weight_column, self.stratify_by, self.score_column]
        return list(dict.fromkeys(c for c in wanted if c))


@dataclass
class Frame:
    location: str
    format: str  # "parquet" | "csv"
    dataset: ds.Dataset
    fragments: list[ds.Fragment]
    paths: list[str]

    def row_label(self, fragment: int, row: int) -> str:
        """Where a row is, for people: a CSV line (header = line 1) or a Parquet row (from 1)."""
        return f"line {row + 2}" if self.format == "csv" else f"row {row + 1}"


def _format_of(paths: list[str]) -> str:
    kinds = {"csv" if p.lower().endswith((".csv", ".csv.gz")) else "parquet" for p in paths}
    if len(kinds) > 1:
        raise FrameError("mixes CSV and Parquet files; point at one kind")
    return kinds.pop()


def open_frame(location: str) -> Frame:
    """A file, a glob (``**`` recurses) or a directory (hive partitions ``key=value`` become
    columns; files starting with ``_`` or ``.``, like Spark's ``_SUCCESS``, are skipped); a
    URL (``s3://``, ``gs://``, ``hdfs://``…) through pyarrow's filesystems. Raises FrameError."""
    filesystem = None
    target: str | list[str] = location
    kind: str | None = None  # known here for directories (from their files)
    if "://" in location:
        try:
            filesystem, path = pafs.FileSystem.from_uri(location)
            if GLOB_CHARS & set(path):
                base = path[:min(path.index(c) for c in GLOB_CHARS if c in path)].rsplit("/", 1)[0]
                infos = filesystem.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
                target = sorted(i.path for i in infos if i.is_file and fnmatch.fnmatch(i.path, path))
            else:
                info = filesystem.get_file_info(path)
                if info.type == pafs.FileType.NotFound:
                    raise FrameError("no such file or directory", path=location)
                target = path
                if info.type == pafs.FileType.Directory:
                    infos = filesystem.get_file_info(pafs.FileSelector(path, recursive=True))
                    files = [i.path for i in infos if i.is_file and not i.base_name.startswith(("_", "."))]
                    if not files:
                        raise FrameError("the directory holds no data file", path=location)
                    kind = _format_of(files)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
            raise FrameError(f"cannot open: {exc}", path=location) from exc
    else:
        if GLOB_CHARS & set(location):
            target = sorted(p for p in globlib.glob(location, recursive=True) if os.path.isfile(p))
        elif not os.path.exists(location):
            raise FrameError("no such file or directory", path=location)
        elif os.path.isdir(location):
            files = [os.path.join(d, f) for d, _, fs in os.walk(location) for f in fs
                     if not f.startswith(("_", "."))]
            if not files:
                raise FrameError("the directory holds no data file", path=location)
            kind = _format_of(files)
    if isinstance(target, list):
        if not target:
            raise FrameError("the glob matches no file", path=location)
        kind = _format_of(target)
    elif kind is None:
        kind = _format_of([target])
    file_format: ds.FileFormat | str = "parquet"
    if kind == "csv":
        file_format = ds.CsvFileFormat(read_options=pacsv.ReadOptions(block_size=1 << 22))
    try:
        dataset = ds.dataset(target, format=file_format, partitioning="hive", filesystem=filesystem)
        fragments = list(dataset.get_fragments())
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise FrameError(f"cannot read the frame: {exc}", path=location) from exc
    if not fragments:
        raise FrameError("the frame has no data file", path=location)
    return Frame(location, kind, dataset, fragments, [f.path for f in fragments])


def check_columns(frame: Frame, names: Iterable[str]) -> None:
    available = frame.dataset.schema.names
    for name in names:
        if name not in available:
            raise FrameError(f"no such column; the frame has {', '.join(available)}", path=frame.location,
                             column=name)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S12 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(12)
_ONE = np.uint64(0x3FF0000000000000)  # the bits of 1.0
_CHUNK = 1 << 15  # hash this many rows at a time: their temporaries stay in the CPU's cache (3x faster)


def _seed_word(seed: int) -> tuple[np.uint64, str]:
    digest = hashlib.sha256(f"touchstone-frame-sample:{seed}".encode()).digest()
    return np.uint64(int.from_bytes(digest[:8], "little")), digest[8:16].hex()[:16]


def unit_uniforms(ids: pa.Array | pa.ChunkedArray, seed: int) -> np.ndarray:
    """u_i in (0, 1), a deterministic function of (seed, id): the same on any machine and in
    any partitioning. Integer ids: splitmix64's finaliser of (id XOR a 64-bit word from the
    seed); text ids: pandas' keyed SipHash first. The top 52 bits become the mantissa of a
    double in [1, 2), shifted down by 1 − 2⁻⁵³, so that u is never 0."""
    word, key = _seed_word(seed)
    if pa.types.is_integer(ids.type):
        x = ids.to_numpy(zero_copy_only=False).astype(np.int64, copy=False).view(np.uint64)
    else:
        values = ids.to_numpy(zero_copy_only=False).astype(object)
        x = pd.util.hash_array(values, hash_key=key, categorize=False)
    out = np.empty(len(x), dtype=np.uint64)
    scratch = np.empty(min(len(x), _CHUNK), dtype=np.uint64)
    for start in range(0, len(x), _CHUNK):
        z = out[start:start + _CHUNK]
        t = scratch[:len(z)]
        np.bitwise_xor(x[start:start + _CHUNK], word, out=z)
        z += _GOLDEN
        np.right_shift(z, _S30, out=t)
        z ^= t
        z *= _MIX1
        np.right_shift(z, _S27, out=t)
        z ^= t
        z *= _MIX2
        np.right_shift(z, _S31, out=t)
        z ^= t
        z >>= _S12
        z |= _ONE
    u = out.view(np.float64)
    u -= 1.0 - 2.0 ** -53
    return u


def _numeric(column: pa.Array | pa.ChunkedArray, name: str, where: Any) -> np.ndarray:
    """A numeric column as float64; names the first row that is null, not a number, or infinite."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        try:
            column = pc.cast(column, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            for index, value in enumerate(column.to_pylist()):
                try:
                    float(value) if value is not None else None
                except ValueError:
                    raise where(f"{value!r} is not a number", index, name) from None
            raise where("not a number", None, name) from None
    elif not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
              or pa.types.is_decimal(column.type) or pa.types.is_null(column.type)):
        raise where(f"expected numbers, the column holds {column.type}", None, name)
    if column.null_count:
        first = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise where("empty (null) value", first, name)
    integers = pa.types.is_integer(column.type)
    values = column.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    bad = None if integers else ~np.isfinite(values)
    if bad is not None and bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise where(f"{float(values[first])!r} is not a finite number", first, name)
    return values


def _where_in_batch(path: str | None, offset: int, csv: bool):
    def where(reason: str, index: int | None, column: str | None) -> FrameError:
        row = None if index is None else (f"line {offset + index + 2}" if csv else f"row {offset + index + 1}")
        return FrameError(reason, path=path, row=row, column=column)

    return where


@dataclass
class Rows:
    """One batch's rows as the draw sees them."""

    ids: pa.Array
    u: np.ndarray
    w: np.ndarray
    strata: tuple[np.ndarray, list[str]] | None  # (a stratum code per row, the names), or None: one stratum

    def __len__(self) -> int:
        return len(self.u)


def batch_rows(batch: pa.RecordBatch | pa.Table, design: Design, *, path: str | None = None, offset: int = 0,
               csv: bool = False) -> Rows:
    """Validate one batch and compute its ids, uniforms, sizes and strata. Raises FrameError
    naming the column and row (``offset``: the batch's first row within ``path``)."""
    where = _where_in_batch(path, offset, csv)
    for name in design.columns():
        if name not in batch.schema.names:
            raise where(f"no such column; the frame has {', '.join(batch.schema.names)}", None, name)
    ids = batch.column(design.id_column)
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if pa.types.is_dictionary(ids.type):
        ids = ids.cast(ids.type.value_type)
    if not (pa.types.is_integer(ids.type) or pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type)):
        raise where(f"ids must be integers or text, the column holds {ids.type}", None, design.id_column)
    if ids.null_count:
        first = int(np.flatnonzero(ids.is_null().to_numpy(zero_copy_only=False))[0])
        raise where("empty (null) id", first, design.id_column)
    if not pa.types.is_integer(ids.type):
        empty = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(ids)), 0).to_numpy(zero_copy_only=False)
        if empty.any():
            raise where("empty id", int(np.flatnonzero(empty)[0]), design.id_column)
    n = len(ids)
    w = np.ones(n)
    if design.weight_column:
        w = _numeric(batch.column(design.weight_column), design.weight_column, where)
        if len(w) and w.min() < 0:
            first = int(np.flatnonzero(w < 0)[0])
            raise where(f"{float(w[first])!r}: weights must not be negative", first, design.weight_column)
    if design.kind == "score_weighted":
        assert design.score_column
        scores = _numeric(batch.column(design.score_column), design.score_column, where)
        w = w * np.maximum(scores, design.floor)
    strata = None
    if design.stratify_by:
        column = batch.column(design.stratify_by)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            column = pc.cast(column, pa.string())
        encoded = pc.dictionary_encode(column.fill_null(MISSING_STRATUM) if column.null_count else column)
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks()
        strata = (encoded.indices.to_numpy(zero_copy_only=False), encoded.dictionary.to_pylist())
    return Rows(ids, unit_uniforms(ids, design.seed), w, strata)


def group_strata(strata: tuple[np.ndarray, list[str]] | None) -> Iterator[tuple[str, np.ndarray | None]]:
    """Each stratum's name and its rows' indices in the batch (None: every row)."""
    if strata is None:
        yield "", None
        return
    codes, names = strata
    if len(names) == 1:
        yield names[0], None
        return
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    for h, name in enumerate(names):
        if bounds[h + 1] > bounds[h]:
            yield name, order[bounds[h]:bounds[h + 1]]


def member_rows(frame: Frame, members: pa.Table, columns: list[str]) -> list[dict[str, Any]]:
    """The drawn rows' ``columns`` (hive partition keys included), in ``members`` order, read
    with one ``take`` per file. Each dict also has ``_path``, ``_row`` and ``_line`` (the CSV line or
    Parquet row from 1), for error messages."""
    check_columns(frame, columns)
    partition_names = set(frame.dataset.schema.names) - set(frame.fragments[0].physical_schema.names)
    out: list[dict[str, Any] | None] = [None] * members.num_rows
    fragment = members.column("fragment").to_numpy()
    row = members.column("row").to_numpy()
    for number in np.unique(fragment):
        at = np.flatnonzero(fragment == number)
        frag = frame.fragments[int(number)]
        physical = [c for c in columns if c not in partition_names]
        try:
            table = frag.take(pa.array(row[at]), columns=physical)
        except (pa.ArrowInvalid, OSError) as exc:
            raise FrameError(f"cannot read: {exc}", path=frame.paths[int(number)]) from exc
        keys = ds.get_partition_keys(frag.partition_expression)
        for j, record in zip(at, table.to_pylist(), strict=True):
            record.update({c: keys.get(c) for c in columns if c in partition_names})
            record["_path"], record["_row"] = frame.paths[int(number)], frame.row_label(int(number), int(row[j]))
            record["_line"] = int(row[j]) + (2 if frame.format == "csv" else 1)
            out[int(j)] = record
    return [r for r in out if r is not None]
