"""The plan (from pass-1 totals: n_h, certainty units and the π scale per stratum) and the
selection it implies, per partition (``partition_candidates``, the body of a Spark
``mapInArrow``) and merged. Pure: no Django."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from content.frames.rows import Design, FrameError, Rows, batch_rows, group_strata
from content.sampling import allocate


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


CANDIDATE_SCHEMA_FIELDS = ("id", "stratum", "size", "u", "key", "pi")


def candidates_of(rows: Rows, plan: Plan) -> dict[str, dict[str, np.ndarray]]:
    """Each row's key and π under ``plan``; per stratum the n_h smallest keys of these rows."""
    out = {}
    ids = rows.ids.to_numpy(zero_copy_only=False)
    for stratum, index in group_strata(rows.strata):
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
