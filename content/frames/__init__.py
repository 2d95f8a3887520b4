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

from content.frames.plan import (
    Plan,
    StratumPlan,
    Totals,
    allocation,
    candidates_of,
    certainty,
    make_plan,
    merge_candidates,
    partition_candidates,
)
from content.frames.rows import (
    DESIGNS,
    MISSING_STRATUM,
    Design,
    Frame,
    FrameError,
    Rows,
    batch_rows,
    check_columns,
    group_strata,
    member_rows,
    open_frame,
    unit_uniforms,
)
from content.frames.scan import FrameDraw, draw

__all__ = [
    "DESIGNS", "MISSING_STRATUM", "Design", "Frame", "FrameDraw", "FrameError", "Plan", "Rows", "StratumPlan",
    "Totals", "allocation", "batch_rows", "candidates_of", "certainty", "check_columns", "draw", "group_strata",
    "make_plan", "member_rows", "merge_candidates", "open_frame", "partition_candidates", "unit_uniforms",
]
