"""The Spark job (content.spark) on local PySpark gives the local draw's sample. Skipped where
PySpark or Java is missing (the per-partition function is tested in test_frames.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pyspark = pytest.importorskip("pyspark")
if shutil.which("java") is None:
    pytest.skip("PySpark needs Java", allow_module_level=True)

from content import frames  # noqa: E402
from content.spark import spark_draw  # noqa: E402


@pytest.fixture(scope="module")
def spark():
    import os
    import sys

    from pyspark.sql import SparkSession

    # Spark's Python workers: this interpreter, able to import this checkout's content.frames
    root = str(Path(__file__).resolve().parents[2])
    saved = {k: os.environ.get(k) for k in ("PYSPARK_PYTHON", "PYTHONPATH")}
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (root, saved["PYTHONPATH"]) if p)
    session = (SparkSession.builder.master("local[2]").appName("touchstone-frame-test")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "4")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true").getOrCreate())
    yield session
    session.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.mark.parametrize("design", [
    frames.Design("uniform", 40, seed=2, weight_column="impressions"),
    frames.Design("stratified", 40, seed=2, stratify_by="country"),
])
def test_spark_job_draws_the_local_sample(spark, tmp_path: Path, design: frames.Design) -> None:
    rng = np.random.default_rng(1)
    n = 3000
    impressions = rng.integers(0, 40, n)
    impressions[:2] = 50_000
    table = pa.table({"id": np.arange(n, dtype=np.int64) * 3 + 1, "impressions": impressions,
                      "country": rng.choice(["NG", "IN", "US"], n)})
    path = tmp_path / "frame"
    pq.write_to_dataset(table, path, partition_cols=["country"])
    local = frames.draw(frames.open_frame(str(path)), design)
    df = spark.read.parquet(str(path)).repartition(7)
    plan, members = spark_draw(df, design)
    assert plan.strata == local.plan.strata
    assert members.column("id").to_pylist() == local.members.column("id").to_pylist()
    assert members.column("pi").to_pylist() == pytest.approx(local.members.column("pi").to_pylist())
