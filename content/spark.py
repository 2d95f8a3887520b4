"""The frame draw of ``content.frames`` as a Spark job, for frames beyond one machine. Optional:
needs ``pyspark`` (``pip install '.[spark]'``) and Java; nothing else in Touchstone imports it.

Two passes over the DataFrame (cache it, or read it twice from the warehouse):

1. ``mapInArrow`` of ``_summaries``: per Arrow batch and stratum, the rows, the rows with a
   positive size, Σ size, and the n largest sizes; summed and ranked by Spark, collected
   (H rows and H × n sizes) into the ``Plan`` (allocation, certainty units, π scale).
2. ``mapInArrow`` of ``content.frames.partition_candidates`` with that plan broadcast: each
   batch's candidates (per stratum, its n_h smallest keys); Spark keeps the n_h smallest keys
   per stratum and the driver collects them (n rows).

Every row's key and π depend only on (seed, id, size) and the plan, so the result is the
sample that ``content.frames.draw`` gives on one machine, whatever the partitioning.
See docs/spark_sampling.md. Pure: no Django.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from content import frames


def _summaries(batches: Iterator[pa.RecordBatch], design: frames.Design) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        rows = frames.batch_rows(batch, design)
        for stratum, index in frames.group_strata(rows.strata):
            w = rows.w if index is None else rows.w[index]
            positive = w[w > 0]
            top = np.sort(positive)[::-1][:design.size] if design.weighted else np.array([])
            yield pa.RecordBatch.from_pydict({
                "stratum": [stratum] * (1 + len(top)),
                "rows": [len(w)] + [0] * len(top),
                "positive": [len(positive)] + [0] * len(top),
                "weight": [float(w.sum())] + [0.0] * len(top),
                "size": [None] + top.tolist(),
            }, schema=SUMMARY_SCHEMA)


SUMMARY_SCHEMA = pa.schema([("stratum", pa.string()), ("rows", pa.int64()), ("positive", pa.int64()),
                            ("weight", pa.float64()), ("size", pa.float64())])


def spark_plan(df: Any, design: frames.Design) -> frames.Plan:
    """Pass 1: the plan from the DataFrame's totals. Raises FrameError (e.g. size > N)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    design.check()
    summary = df.select(*design.columns()).mapInArrow(
        lambda it: _summaries(it, design), "stratum string, rows long, positive long, weight double, size double")
    summary = summary.cache()
    totals = frames.Totals()
    for row in summary.groupBy("stratum").agg(F.sum("rows").alias("rows"), F.sum("positive").alias("positive"),
                                              F.sum("weight").alias("weight")).collect():
        totals.add(row["stratum"], int(row["rows"]), int(row["positive"]), float(row["weight"]))
    largest: dict[str, np.ndarray] = {}
    if design.weighted:
        rank = F.row_number().over(Window.partitionBy("stratum").orderBy(F.col("size").desc()))
        top = summary.where(F.col("size").isNotNull()).withColumn("rank", rank).where(F.col("rank") <= design.size)
        for row in top.select("stratum", "size").collect():
            largest.setdefault(row["stratum"], []).append(row["size"])  # type: ignore[arg-type]
        largest = {h: np.asarray(v, dtype=float) for h, v in largest.items()}
    summary.unpersist()
    return frames.make_plan(totals, design, largest)


def spark_draw(df: Any, design: frames.Design) -> tuple[frames.Plan, pa.Table]:
    """Draw ``design`` from a Spark DataFrame: (the plan, the members as an Arrow table with id,
    stratum, size, u, key and π, by stratum then key)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    plan = spark_plan(df, design)
    spec = plan.as_dict()  # plain JSON: what the executors receive

    def candidates(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        local = frames.Plan.from_dict(spec)
        for batch in batches:
            yield from frames.partition_candidates(batch, local).to_batches()

    id_type = df.schema[design.id_column].dataType.simpleString()
    schema = f"id {id_type}, stratum string, size double, u double, key double, pi double"
    found = df.select(*design.columns()).mapInArrow(candidates, schema)
    quotas = df.sparkSession.createDataFrame([(h, s.sample) for h, s in plan.strata.items()],
                                             "stratum string, quota long")
    rank = F.row_number().over(Window.partitionBy("stratum").orderBy("key"))
    kept = found.withColumn("rank", rank).join(quotas, "stratum").where(F.col("rank") <= F.col("quota"))
    table = pa.Table.from_pandas(kept.select("id", "stratum", "size", "u", "key", "pi").toPandas(),
                                 preserve_index=False)
    return plan, frames.merge_candidates([table], plan)
