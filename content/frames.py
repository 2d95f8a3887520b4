"""Probability samples drawn from a frame that lives outside the database: Parquet (a file, a
glob, or a hive-partitioned directory as Spark, Trino or BigQuery export it) or CSV, read with
pyarrow datasets in bounded memory. Pure: pyarrow, numpy and pandas, no Django.

Every row's fate depends only on (seed, its id, its size measure) and on frame totals, so the
same draw runs row by row on any partitioning of the frame (see ``partition_candidates``, the
body of a Spark ``mapInArrow``; docs/spark_sampling.md).

- Each row gets a uniform u_i in (0, 1) from a keyed hash of (seed, id): splitmix64 of the
  integer id XOR a 64-bit word derived from the seed, or pandas' keyed SipHash of a text id.
- Size measure w_i: 1 (``uniform``, ``stratified``); the ``weight_column`` (e.g. impressions:
  probability proportional to views, for prevalence per view); ``score_weighted``:
  max(score, floor), times the weight column when one is given. Rows with w_i = 0 (no views)
  are outside the population that is sampled and are never drawn.
- Stratum sizes: one stratum, or n_h allocated over ``stratify_by`` proportionally to N_h (to
  Σ_h w_i with a weight column) by largest remainder, at least one per stratum when n >= H
  (``content.sampling.allocate``).
- Target inclusion probabilities (πps): π_i = n_h w_i / W_h, capped at 1; the units that
  would exceed 1 are taken with certainty and the rest rescaled, exactly as
  ``content.sampling.pps_probabilities`` does. With w_i = 1 that is π_i = n_h / N_h.
- Selection is order sampling: certainty units, then the n_h − c_h non-certain units with the
  smallest keys u_i / π_i (sequential Poisson sampling, Ohlsson 1998; with equal sizes, the
  n_h smallest u_i: an exact simple random sample without replacement).

The stored π_i are the target πps probabilities. For equal sizes (``uniform``, ``stratified``
without a weight column) and for the certainty units they are exact; for unequal sizes,
order sampling's actual inclusion probabilities equal them only approximately (the
approximation is good when n is large and no π_i is close to 1; Rosén 1997), the price of a
fixed-size, one-pass, partition-independent draw.

The local draw is one pass (counts, Σw, the n largest sizes and the n smallest keys per
stratum, merged batch by batch), or two when the strata are too many to keep n candidates for
each (pass 1 counts, pass 2 keeps n_h). Memory is O(batch + H·n), never the frame.

Ids must be unique; a duplicate is caught when both copies are among the kept candidates (a
bounded draw cannot check a billion ids: check uniqueness in the warehouse).
"""

from __future__ import annotations

import fnmatch
import glob as globlib
import hashlib
import math
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from content.sampling import allocate

DESIGNS = ("uniform", "stratified", "score_weighted")
MISSING_STRATUM = "(missing)"
MAX_STRATA = 10_000
CANDIDATE_BUDGET = 2_000_000  # candidate rows kept in one pass before falling back to two passes
BATCH_ROWS = 1 << 16  # rows per batch: its arrays stay in the CPU cache
WORKERS = max(1, min(4, (os.cpu_count() or 1) - 1))  # batch filters in parallel with the main thread
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


# ---------------------------------------------------------------------------------------------
# Opening the frame

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


# ---------------------------------------------------------------------------------------------
# Per-row quantities: uniforms, sizes, strata

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
    strata: np.ndarray | None  # stratum names (object), or None for one stratum

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
        strata = column.fill_null(MISSING_STRATUM).to_numpy(zero_copy_only=False).astype(object)
    return Rows(ids, unit_uniforms(ids, design.seed), w, strata)


# ---------------------------------------------------------------------------------------------
# Bounded candidate buffers

@dataclass
class _Kept:
    """Candidate rows of one stratum: id, uniform, size, and where the row is."""

    ids: list[np.ndarray] = field(default_factory=list)
    u: list[np.ndarray] = field(default_factory=list)
    w: list[np.ndarray] = field(default_factory=list)
    fragment: list[np.ndarray] = field(default_factory=list)
    row: list[np.ndarray] = field(default_factory=list)
    pending: int = 0

    def add(self, ids: np.ndarray, u: np.ndarray, w: np.ndarray, fragment: np.ndarray, row: np.ndarray) -> None:
        self.ids.append(ids)
        self.u.append(u)
        self.w.append(w)
        self.fragment.append(fragment)
        self.row.append(row)
        self.pending += len(u)

    def arrays(self) -> dict[str, np.ndarray]:
        if not self.u:
            return {"ids": np.array([], dtype=np.int64), "u": np.array([]), "w": np.array([]),
                    "fragment": np.array([], dtype=np.int64), "row": np.array([], dtype=np.int64)}
        return {"ids": np.concatenate(self.ids), "u": np.concatenate(self.u), "w": np.concatenate(self.w),
                "fragment": np.concatenate(self.fragment), "row": np.concatenate(self.row)}

    def keep(self, index: np.ndarray, data: dict[str, np.ndarray]) -> None:
        self.ids, self.u, self.w = [data["ids"][index]], [data["u"][index]], [data["w"][index]]
        self.fragment, self.row = [data["fragment"][index]], [data["row"][index]]
        self.pending = len(index)


def _survivors(ids: np.ndarray, u: np.ndarray, w: np.ndarray, fragment: int, rows: np.ndarray | None, offset: int,
               key_cut: float, size_cut: float, weighted: bool,
               ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
    """The rows of one stratum in one batch that may still be among the k smallest keys (key <=
    ``key_cut``) or the k largest sizes (size >= ``size_cut``). A stale (looser) cut only keeps
    more rows, so batches can be filtered in parallel with the cuts known when they started.
    ``rows``: their indices in the batch (None: all); ``offset``: the batch's first row in file
    ``fragment``."""
    def pick(take: np.ndarray) -> dict[str, np.ndarray]:
        at = np.flatnonzero(take)
        return {"ids": ids[at], "u": u[at], "w": w[at], "fragment": np.full(len(at), fragment, dtype=np.int64),
                "row": offset + (at if rows is None else rows[at])}

    with np.errstate(divide="ignore"):
        key = u / w  # w = 0 (no views): key inf, never kept
    low = pick(key <= key_cut if key_cut < np.inf else key < np.inf)
    high = pick(w >= size_cut if size_cut > 0 else w > 0) if weighted else None
    return low, high


class _Buffers:
    """Per stratum: the k smallest keys u/w (and, weighted, the k largest sizes), merged batch by
    batch with a threshold so that most rows are rejected by one vectorised comparison."""

    def __init__(self, capacity: dict[str, int] | int, weighted: bool, on_duplicate) -> None:
        self.capacity = capacity
        self.weighted = weighted
        self.on_duplicate = on_duplicate
        self.low: dict[str, _Kept] = {}
        self.high: dict[str, _Kept] = {}
        self.key_cut: dict[str, float] = {}
        self.size_cut: dict[str, float] = {}

    def cap(self, stratum: str) -> int:
        return self.capacity if isinstance(self.capacity, int) else self.capacity.get(stratum, 0)

    def rows(self) -> int:
        return sum(k.pending for k in self.low.values()) + sum(k.pending for k in self.high.values())

    def absorb(self, stratum: str, low: dict[str, np.ndarray] | None, high: dict[str, np.ndarray] | None) -> None:
        """Add one batch's survivors (see ``_survivors``) of a stratum; compact past 2k rows."""
        k = self.cap(stratum)
        if k <= 0:
            return
        if low is not None and len(low["u"]):
            kept = self.low.setdefault(stratum, _Kept())
            kept.add(low["ids"], low["u"], low["w"], low["fragment"], low["row"])
            if kept.pending >= 2 * k:
                self._compact_low(stratum)
        if high is not None and len(high["u"]):
            kept = self.high.setdefault(stratum, _Kept())
            kept.add(high["ids"], high["u"], high["w"], high["fragment"], high["row"])
            if kept.pending >= 2 * k:
                self._compact_high(stratum)

    def _compact_low(self, stratum: str) -> None:
        kept, k = self.low[stratum], self.cap(stratum)
        data = kept.arrays()
        key = data["u"] / data["w"]
        self._check_duplicates(data)
        if len(key) > k:
            index = np.argpartition(key, k - 1)[:k]
            self.key_cut[stratum] = float(key[index].max())
        else:
            index = np.arange(len(key))
        kept.keep(index, data)

    def _compact_high(self, stratum: str) -> None:
        kept, k = self.high[stratum], self.cap(stratum)
        data = kept.arrays()
        if len(data["w"]) > k:
            index = np.argpartition(-data["w"], k - 1)[:k]
            self.size_cut[stratum] = float(data["w"][index].min())
        else:
            index = np.arange(len(data["w"]))
        kept.keep(index, data)

    def _check_duplicates(self, data: dict[str, np.ndarray]) -> None:
        ids = data["ids"]
        if len(ids) < 2:
            return
        order = np.argsort(ids, kind="stable")
        same = ids[order][1:] == ids[order][:-1]
        if same.any():
            first = int(np.flatnonzero(same)[0])
            a, b = order[first], order[first + 1]
            self.on_duplicate(ids[a], (int(data["fragment"][a]), int(data["row"][a])),
                              (int(data["fragment"][b]), int(data["row"][b])))

    def finish(self) -> None:
        for stratum in list(self.low):
            self._compact_low(stratum)
        for stratum in list(self.high):
            self._compact_high(stratum)


# ---------------------------------------------------------------------------------------------
# The pass over the frame

@dataclass
class Totals:
    """Pass-1 totals per stratum: rows, rows with a positive size, Σ size."""

    rows: dict[str, int] = field(default_factory=dict)
    positive: dict[str, int] = field(default_factory=dict)
    weight: dict[str, float] = field(default_factory=dict)

    def add(self, stratum: str, rows: int, positive: int, weight: float) -> None:
        self.rows[stratum] = self.rows.get(stratum, 0) + rows
        self.positive[stratum] = self.positive.get(stratum, 0) + positive
        self.weight[stratum] = self.weight.get(stratum, 0.0) + weight


def _group(strata: np.ndarray | None, n: int) -> Iterator[tuple[str, np.ndarray | None]]:
    if strata is None:
        yield "", None
        return
    codes, names = pd.factorize(strata, sort=True)
    if len(names) == 1:
        yield str(names[0]), None
        return
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    for h, name in enumerate(names):
        yield str(name), order[bounds[h]:bounds[h + 1]]


def _scan(frame: Frame, design: Design, capacity: dict[str, int] | int, *, batch_rows_: int = BATCH_ROWS,
          budget: int = CANDIDATE_BUDGET) -> tuple[Totals, _Buffers | None]:
    """One pass: totals, and the candidates of each stratum (None when they outgrew ``budget``,
    so that a second pass with the allocated n_h is needed)."""
    def duplicate(identifier: Any, a: tuple[int, int], b: tuple[int, int]) -> None:
        shown = identifier.item() if isinstance(identifier, np.generic) else identifier
        raise FrameError(f"id {shown!r} occurs more than once (also at {frame.paths[a[0]]}: "
                         f"{frame.row_label(*a)}); ids must be unique", path=frame.paths[b[0]],
                         row=frame.row_label(*b), column=design.id_column)

    totals = Totals()
    buffers: _Buffers | None = _Buffers(capacity, design.weighted, duplicate)
    csv = frame.format == "csv"
    number_of = {path: number for number, path in enumerate(frame.paths)}
    offsets = [0] * len(frame.paths)

    def prepare(batch: pa.RecordBatch, number: int, offset: int, cuts: tuple[dict, dict] | None) -> list[tuple]:
        """Runs in a worker thread (numpy and Arrow release the GIL): one batch's per-stratum
        totals and survivors."""
        rows = batch_rows(batch, design, path=frame.paths[number], offset=offset, csv=csv)
        ids = rows.ids.to_numpy(zero_copy_only=False)
        parts = []
        for stratum, index in _group(rows.strata, len(rows)):
            u, w, i = (rows.u, rows.w, ids) if index is None else (rows.u[index], rows.w[index], ids[index])
            positive = int(np.count_nonzero(w > 0)) if design.weighted else len(w)  # faster than on floats
            found = None
            if cuts is not None:
                found = _survivors(i, u, w, number, index, offset, cuts[0].get(stratum, np.inf),
                                   cuts[1].get(stratum, -np.inf), design.weighted)
            parts.append((stratum, len(u), positive, float(w.sum()), found))
        return parts

    def absorb(parts: list[tuple]) -> None:
        nonlocal buffers
        for stratum, count, positive, weight, found in parts:
            totals.add(stratum, count, positive, weight)
            if len(totals.rows) > MAX_STRATA:
                raise FrameError(f"more than {MAX_STRATA} strata; stratify by a coarser column",
                                 path=frame.location, column=design.stratify_by)
            if buffers is not None and found is not None:
                buffers.absorb(stratum, *found)
        if buffers is not None and buffers.rows() > budget:
            buffers = None  # too many strata × n to keep: count only, and draw in a second pass

    # One scanner over the whole dataset, so that files are read ahead while batches are
    # processed; its batches come in file order, so each row's position in its file is known.
    # Batches are filtered by WORKERS threads and merged here in order (at most 2·WORKERS in flight).
    scanner = frame.dataset.scanner(columns=design.columns(), batch_size=batch_rows_, use_threads=True)
    in_flight: deque[Future] = deque()
    try:
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            for tagged in scanner.scan_batches():
                batch = tagged.record_batch
                if batch.num_rows == 0:
                    continue
                number = number_of[tagged.fragment.path]
                offset = offsets[number]
                offsets[number] += batch.num_rows
                cuts = (dict(buffers.key_cut), dict(buffers.size_cut)) if buffers is not None else None
                in_flight.append(pool.submit(prepare, batch, number, offset, cuts))
                if len(in_flight) >= 2 * WORKERS:
                    absorb(in_flight.popleft().result())
            while in_flight:
                absorb(in_flight.popleft().result())
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError) as exc:
        raise _located(frame, design, exc) from exc
    finally:
        for future in in_flight:
            future.cancel()
    if buffers is not None:
        buffers.finish()
    return totals, buffers


def _located(frame: Frame, design: Design, exc: Exception) -> FrameError:
    """Arrow's read error, with the file it happened in (found by reading the files one by one:
    only on this error path) and the name of a CSV column it gives only by position."""
    for fragment in frame.fragments:
        try:
            for _ in fragment.to_batches(schema=frame.dataset.schema, columns=design.columns()):
                pass
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError) as found:
            text = str(found)
            if "In CSV column #" in text:
                try:
                    number = int(text.split("In CSV column #", 1)[1].split(":", 1)[0])
                    text = f"{text} (column #{number} is {fragment.physical_schema.names[number]!r})"
                except (ValueError, IndexError, pa.ArrowInvalid):
                    pass
            return FrameError(f"cannot read: {text}", path=fragment.path)
    return FrameError(f"cannot read: {exc}", path=frame.location)


# ---------------------------------------------------------------------------------------------
# The plan: n_h, certainty units and π scale per stratum (from pass-1 totals)

@dataclass(frozen=True)
class StratumPlan:
    frame: int  # N_h, rows
    positive: int  # rows with a positive size
    weight: float  # W_h = Σ size
    sample: int  # n_h
    certain: int = 0  # c_h, units taken with certainty
    certainty_size: float = math.inf  # units with size >= this are certain
    scale: float = 0.0  # π_i = scale × size for the others


@dataclass(frozen=True)
class Plan:
    """Everything a partition needs besides its rows: plain JSON (``as_dict``/``from_dict``)."""

    design: Design
    strata: dict[str, StratumPlan]

    @property
    def frame_size(self) -> int:
        return sum(s.frame for s in self.strata.values())

    @property
    def total_weight(self) -> float:
        return sum(s.weight for s in self.strata.values())

    def as_dict(self) -> dict[str, Any]:
        return {"design": asdict(self.design), "strata": {k: asdict(v) for k, v in self.strata.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        return cls(Design(**data["design"]), {k: StratumPlan(**v) for k, v in data["strata"].items()})


def allocation(totals: Totals, design: Design) -> dict[str, int]:
    """n_h per stratum: proportional to N_h (to W_h when sizes vary), never above the rows that
    can be drawn. Raises FrameError when n exceeds them."""
    names = sorted(totals.rows)
    caps = np.array([totals.positive[h] for h in names])
    drawable = int(caps.sum())
    if sum(totals.rows.values()) == 0:
        raise FrameError("the frame is empty")
    if design.size > drawable:
        what = "rows" if drawable == sum(totals.rows.values()) else "rows with a positive size"
        raise FrameError(f"sample size {design.size} exceeds the frame's {drawable} {what}")
    quotas = np.array([totals.weight[h] if design.weighted else totals.rows[h] for h in names], dtype=float)
    alloc = allocate(quotas, design.size, caps)
    return {h: int(a) for h, a in zip(names, alloc, strict=True)}


def certainty(sizes_desc: np.ndarray, total: float, n: int) -> tuple[int, float]:
    """c, the number of units taken with certainty, given the largest sizes in descending order
    (at least the n largest), their stratum's total size and n: the same set as
    ``pps_probabilities``' iterative capping. Returns (c, the sum of their sizes)."""
    c, certain_total = 0, 0.0
    while c < n and c < len(sizes_desc):
        rest = total - certain_total
        if rest <= 0 or (n - c) * sizes_desc[c] < rest * (1 - 1e-12):
            break
        certain_total += float(sizes_desc[c])
        c += 1
    return c, certain_total


def make_plan(totals: Totals, design: Design, largest: dict[str, np.ndarray] | None) -> Plan:
    """Allocate, then cap: ``largest[h]`` holds stratum h's n_h (or more) largest sizes."""
    alloc = allocation(totals, design)
    strata = {}
    for h, n_h in alloc.items():
        c, certain_total, cut = 0, 0.0, math.inf
        if n_h and n_h == totals.positive[h]:
            c, certain_total, cut = n_h, totals.weight[h], 0.0
        elif n_h and design.weighted:
            sizes = np.sort(np.asarray(largest.get(h, np.array([])) if largest else np.array([])))[::-1]
            c, certain_total = certainty(sizes, totals.weight[h], n_h)
            cut = float(sizes[c - 1]) if c else math.inf
        rest = totals.weight[h] - certain_total
        scale = (n_h - c) / rest if n_h > c and rest > 0 else 0.0
        strata[h] = StratumPlan(totals.rows[h], totals.positive[h], totals.weight[h], n_h, c, cut, scale)
    return Plan(design, strata)


# ---------------------------------------------------------------------------------------------
# Selection: per partition (Spark's mapInArrow body) and merged

CANDIDATE_SCHEMA_FIELDS = ("id", "stratum", "size", "u", "key", "pi")


def candidates_of(rows: Rows, plan: Plan) -> dict[str, dict[str, np.ndarray]]:
    """Each row's key and π under ``plan``; per stratum the n_h smallest keys of these rows."""
    out = {}
    ids = rows.ids.to_numpy(zero_copy_only=False)
    for stratum, index in _group(rows.strata, len(rows)):
        sp = plan.strata.get(stratum)
        if sp is None:
            raise FrameError(f"stratum {stratum!r} is not in the plan: the plan's totals are from another frame")
        if sp.sample == 0:
            continue
        u, w, i = (rows.u, rows.w, ids) if index is None else (rows.u[index], rows.w[index], ids[index])
        certain = (w >= sp.certainty_size) & (w > 0)
        pi = np.where(certain, 1.0, np.minimum(sp.scale * w, 1.0))
        with np.errstate(divide="ignore"):
            # certainty units first (keys in (-1, 0)), then sequential Poisson keys u / π
            key = np.where(certain, u - 1.0, np.where(pi > 0, u / np.where(pi > 0, pi, 1.0), np.inf))
        keep = np.isfinite(key)
        if keep.sum() > sp.sample:
            part = np.argpartition(np.where(keep, key, np.inf), sp.sample - 1)[:sp.sample]
            keep = np.zeros(len(key), dtype=bool)
            keep[part] = True
        out[stratum] = {"id": i[keep], "size": w[keep], "u": u[keep], "key": key[keep], "pi": pi[keep],
                        "position": (np.arange(len(rows)) if index is None else index)[keep]}
    return out


def partition_candidates(batch: pa.RecordBatch | pa.Table, plan: Plan) -> pa.Table:
    """The body of a Spark ``mapInArrow`` over any partition of the frame: the partition's
    candidate rows (per stratum, its n_h smallest keys) with columns id, stratum, size, u, key
    and π. Merging every partition's candidates with ``merge_candidates`` gives exactly the
    sample the local draw gives. Raises FrameError on bad rows (no path: the caller knows it)."""
    rows = batch_rows(batch, plan.design)
    found = candidates_of(rows, plan)
    return _as_table(found, rows.ids.type)


def _as_table(found: dict[str, dict[str, np.ndarray]], id_type: pa.DataType) -> pa.Table:
    strata = [s for s in found for _ in range(len(found[s]["key"]))]
    def column(name: str) -> np.ndarray:
        return np.concatenate([found[s][name] for s in found]) if found else np.array([])
    return pa.table({"id": pa.array(column("id") if found else [], type=id_type),
                     "stratum": pa.array(strata, type=pa.string()),
                     "size": pa.array(column("size"), type=pa.float64()),
                     "u": pa.array(column("u"), type=pa.float64()),
                     "key": pa.array(column("key"), type=pa.float64()),
                     "pi": pa.array(column("pi"), type=pa.float64())})


def merge_candidates(tables: Iterable[pa.Table], plan: Plan) -> pa.Table:
    """Candidates of several partitions → the sample: per stratum the n_h smallest keys,
    ordered by stratum then key. Raises FrameError on a duplicate id among them."""
    table = pa.concat_tables(list(tables))
    out = []
    for stratum, sp in sorted(plan.strata.items()):
        part = table.filter(pc.equal(table.column("stratum"), stratum))
        part = part.take(pc.sort_indices(part, sort_keys=[("key", "ascending")]))[:sp.sample]
        ids = part.column("id").to_numpy()
        if len(np.unique(ids)) != len(ids):
            raise FrameError("an id occurs more than once among the drawn rows; ids must be unique")
        out.append(part)
    return pa.concat_tables(out) if out else table.slice(0, 0)


# ---------------------------------------------------------------------------------------------
# The local draw

@dataclass(frozen=True)
class FrameDraw:
    plan: Plan
    members: pa.Table  # id, stratum, size, u, key, pi, fragment, row; by stratum then key
    passes: int

    @property
    def strata(self) -> dict[str, dict[str, Any]]:
        return {h: {"frame": s.frame, "sample": s.sample, **({"weight": s.weight, "certain": s.certain,
                                                                "positive": s.positive}
                                                               if self.plan.design.weighted else {})}
                for h, s in self.plan.strata.items()}


def draw(frame: Frame, design: Design, *, batch_rows_: int = BATCH_ROWS, budget: int = CANDIDATE_BUDGET) -> FrameDraw:
    """Draw ``design`` from ``frame``: one pass (two when strata × n outgrow ``budget``).
    Raises FrameError naming the file, row and column at fault."""
    design.check()
    check_columns(frame, design.columns())
    totals, buffers = _scan(frame, design, design.size, batch_rows_=batch_rows_, budget=budget)
    passes = 1
    alloc = allocation(totals, design)
    if buffers is None:
        _, buffers = _scan(frame, design, alloc, batch_rows_=batch_rows_, budget=10 * sum(alloc.values()) + 1)
        passes = 2
        assert buffers is not None
    largest = {h: kept.arrays()["w"] for h, kept in buffers.high.items()}
    plan = make_plan(totals, design, largest)
    tables = []
    for stratum, sp in sorted(plan.strata.items()):
        if sp.sample == 0:
            continue
        pools = [buffers.low[stratum].arrays()] if stratum in buffers.low else []
        if stratum in buffers.high:
            pools.append(buffers.high[stratum].arrays())
        data = {k: np.concatenate([p[k] for p in pools]) for k in pools[0]}
        # a row may sit in both buffers: keep one copy by location
        location = data["fragment"] * (1 << 40) + data["row"]
        _, first = np.unique(location, return_index=True)
        data = {k: v[first] for k, v in data.items()}
        rows = Rows(pa.array(data["ids"]), data["u"], data["w"], None)
        found = candidates_of(rows, Plan(design, {"": sp}))[""]
        order = np.argsort(found["key"], kind="stable")
        position = found["position"][order]
        tables.append(pa.table({
            "id": pa.array(found["id"][order]), "stratum": pa.array([stratum] * len(order), type=pa.string()),
            "size": found["size"][order], "u": found["u"][order], "key": found["key"][order],
            "pi": found["pi"][order], "fragment": data["fragment"][position], "row": data["row"][position]}))
    members = pa.concat_tables(tables)
    ids = members.column("id").to_numpy(zero_copy_only=False)
    if len(np.unique(ids)) != len(ids):
        raise FrameError("an id occurs more than once among the drawn rows; ids must be unique",
                         path=frame.location, column=design.id_column)
    return FrameDraw(plan, members, passes)


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
