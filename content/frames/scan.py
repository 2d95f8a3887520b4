"""The local draw: one pass over the frame (two when strata × n outgrow the budget) keeping
bounded candidate buffers per stratum, then the plan's selection. Pure: no Django."""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from content.frames.plan import Plan, Totals, allocation, candidates_of, make_plan
from content.frames.rows import Design, Frame, FrameError, Rows, batch_rows, check_columns

MAX_STRATA = 10_000
CANDIDATE_BUDGET = 2_000_000  # candidate rows kept in one pass before falling back to two passes
BATCH_ROWS = 1 << 16  # rows per batch: its arrays stay in the CPU cache
WORKERS = max(1, min(4, (os.cpu_count() or 1) - 1))  # batch filters in parallel with the main thread


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


def _batch_parts(rows: Rows, weighted: bool, fragment: int, offset: int,
                 cuts: tuple[dict[str, float], dict[str, float]] | None) -> list[tuple]:
    """One batch's (stratum, rows, rows with a positive size, Σ size, survivors) per stratum.

    Survivors are the rows that may still be among their stratum's k smallest keys (key <= its
    key cut) or k largest sizes (size >= its size cut), as (low, high) dicts of arrays. A stale
    (looser) cut only keeps more rows, so batches can be filtered in parallel with the cuts
    known when they started. Filtering is on the whole batch (each row compared with its
    stratum's cut); only survivors are grouped. ``offset``: the batch's first row in file
    ``fragment``. ``cuts`` None: totals only."""
    ids = rows.ids.to_numpy(zero_copy_only=False)
    u, w = rows.u, rows.w
    if rows.strata is None:
        codes, names = None, [""]
        counts = np.array([len(w)])
        weights = np.array([w.sum()])
        positive = np.array([np.count_nonzero(w > 0)]) if weighted else counts
    else:
        codes, names = rows.strata
        counts = np.bincount(codes, minlength=len(names))
        weights = np.bincount(codes, weights=w, minlength=len(names))
        positive = np.bincount(codes[w > 0], minlength=len(names)) if weighted else counts
    found: dict[str, tuple[dict, dict | None]] = {}
    if cuts is not None:
        def per_row(cut: dict[str, float], default: float) -> np.ndarray | float:
            values = np.array([cut.get(h, default) for h in names])
            return values[0] if codes is None else values[codes]

        with np.errstate(divide="ignore"):
            key = u / w  # w = 0 (no views): key inf, never kept
        key_cut, size_cut = per_row(cuts[0], np.inf), per_row(cuts[1], -np.inf)
        if codes is None:  # one comparison per row when the cut is known
            low = np.flatnonzero(key <= key_cut if key_cut < np.inf else key < np.inf)
            high = np.flatnonzero(w >= size_cut if size_cut > 0 else w > 0) if weighted else None
        else:
            low = np.flatnonzero((key <= key_cut) & (key < np.inf))
            high = np.flatnonzero((w >= size_cut) & (w > 0)) if weighted else None

        def pick(at: np.ndarray) -> dict[str, np.ndarray]:
            return {"ids": ids[at], "u": u[at], "w": w[at], "fragment": np.full(len(at), fragment, dtype=np.int64),
                    "row": offset + at}

        def by_stratum(at: np.ndarray) -> dict[int, np.ndarray]:
            if codes is None:
                return {0: at}
            order = np.argsort(codes[at], kind="stable")
            at, sorted_codes = at[order], codes[at][order]
            starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]) if len(at) else []
            ends = [*starts[1:], len(at)]
            return {int(sorted_codes[a]): at[a:b] for a, b in zip(starts, ends, strict=True)}

        lows = by_stratum(low)
        highs = by_stratum(high) if high is not None else {}
        for h in set(lows) | set(highs):
            found[names[h]] = (pick(lows.get(h, low[:0])), pick(highs[h]) if h in highs else None)
    return [(name, int(counts[h]), int(positive[h]), float(weights[h]), found.get(name))
            for h, name in enumerate(names) if counts[h]]


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
        return _batch_parts(rows, design.weighted, number, offset, cuts)

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
