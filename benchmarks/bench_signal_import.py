"""Signal score import from Parquet: 1,000,000 scores into a fresh SQLite database, against a raw
``executemany`` of the same rows (already resolved to item ids) into the same table.

ratio = raw time / import time (higher is better; target >= 0.5). The raw insert runs once
before and once after the import (each into a version of its own, so the table grows the same
way around the import) and the baseline is their mean. Both commit every 10,000 rows. Peak RSS
(the process's maximum, measured right after the import) must stay under 500 MB: the import reads
the file with pyarrow's batch reader, one batch at a time."""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
state = Path(tempfile.mkdtemp(prefix="touchstone-bench-"))
os.environ.update(TOUCHSTONE_STATE_DIR=str(state), DATABASE_URL=f"sqlite:///{state / 'bench.sqlite3'}",
                  DJANGO_SETTINGS_MODULE="touchstone.settings", DJANGO_DEBUG="false")

import django  # noqa: E402

django.setup()
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, reset_queries, transaction  # noqa: E402

from benchmarks.benchdb import migrate_and_publish_harassment  # noqa: E402
from content.models import ContentItem  # noqa: E402
from evaluation.models import SignalScore  # noqa: E402
from evaluation.services import signal_create, signal_scores_import, signal_version_create  # noqa: E402
from evaluation.services.scores import INSERT_SQL  # noqa: E402

ROWS = int(os.environ.get("BENCH_SIGNAL_ROWS", 1_000_000))
BATCH = 10_000
RSS_LIMIT_MB = 500
SOURCE = "bench"
OBSERVED = datetime(2024, 6, 1, tzinfo=UTC)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def score_of(i: int) -> float:
    return (i * 7919 % 10_007) / 10_007


def make_items() -> None:
    """ROWS content items, written raw in batches (set-up, not measured)."""
    table = ContentItem._meta.db_table
    now = connection.ops.adapt_datetimefield_value(datetime.now(UTC))
    sql = (f"INSERT INTO {table} (source, external_id, parts, target_part, metadata, scores, content_sha256, status, "
           f"failure_reason, created_at) VALUES (%s, %s, %s, '', '{{}}', '{{}}', %s, 'ready', '', %s)")
    for start in range(0, ROWS, 50_000):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(sql, [(SOURCE, f"item-{i}", f'{{"text": "item {i}"}}', f"{i:064x}", now)
                                     for i in range(start, min(start + 50_000, ROWS))])


def make_parquet(path: Path) -> None:
    schema = pa.schema([("source", pa.string()), ("external_id", pa.string()), ("score", pa.float64()),
                        ("observed_at", pa.timestamp("us", tz="UTC"))])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, ROWS, 100_000):
            ids = range(start, min(start + 100_000, ROWS))
            writer.write_table(pa.table({
                "source": [SOURCE] * len(ids), "external_id": [f"item-{i}" for i in ids],
                "score": [score_of(i) for i in ids],
                "observed_at": [OBSERVED + timedelta(seconds=i) for i in ids]}, schema=schema))


def raw_insert(version_id: int, item_ids: list[int]) -> float:
    """Seconds spent in executemany + commit only (building each batch's tuples is not counted)."""
    observed = connection.ops.adapt_datetimefield_value
    spent = 0.0
    for start in range(0, ROWS, BATCH):
        rows = [(version_id, item_ids[i], score_of(i), "", observed(OBSERVED + timedelta(seconds=i)))
                for i in range(start, min(start + BATCH, ROWS))]
        began = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(INSERT_SQL, rows)
        spent += time.perf_counter() - began
        reset_queries()
    return spent


def main() -> None:
    published = migrate_and_publish_harassment()
    ops = get_user_model().objects.create_superuser("ops")
    make_items()
    item_ids = list(ContentItem.objects.filter(source=SOURCE).order_by("pk").values_list("pk", flat=True))
    path = state / "scores.parquet"
    make_parquet(path)
    signal = signal_create(name="bench-clf", kind="production_classifier", policy=published.policy,
                           output_type="score", score_label="violating", acting_user=ops)
    before, imported, after = (signal_version_create(signal=signal, acting_user=ops) for _ in range(3))
    rss_before = peak_rss_mb()

    raw_before = raw_insert(before.pk, item_ids)
    del item_ids[:]  # the import resolves items itself
    began = time.perf_counter()
    job = signal_scores_import(path=path, version=imported, acting_user=ops)
    elapsed = time.perf_counter() - began
    rss_import = peak_rss_mb()
    item_ids = list(ContentItem.objects.filter(source=SOURCE).order_by("pk").values_list("pk", flat=True))
    raw_after = raw_insert(after.pk, item_ids)

    assert job.imported == ROWS and job.rejected == job.unknown == job.duplicates == 0, job
    assert SignalScore.objects.filter(version=imported).count() == ROWS
    baseline = (raw_before + raw_after) / 2
    ratio = baseline / elapsed
    print(f"imported {job.imported:,} scores from Parquet in {elapsed:.1f} s ({job.imported / elapsed:,.0f} rows/s); "
          f"raw executemany {raw_before:.1f} s before, {raw_after:.1f} s after (mean {baseline:.1f} s); "
          f"peak RSS {rss_before:.0f} MB before, {rss_import:.0f} MB after the import (limit {RSS_LIMIT_MB} MB)")
    if rss_import >= RSS_LIMIT_MB:
        print(f"peak RSS {rss_import:.0f} MB is over the {RSS_LIMIT_MB} MB limit")
    print(f"BENCH signal_import {elapsed:.2f} s ratio={ratio:.2f} target=0.5")


if __name__ == "__main__":
    main()
