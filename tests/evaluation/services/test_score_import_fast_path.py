"""The fast path of score imports (a clean batch inserted at once, items resolved in the insert)
stores exactly what the row-by-row path stores, and every batch it cannot take (a bad row, an
unknown item, a duplicate) falls back to the row-by-row path, so reports stay as they were."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.db import connection

from evaluation.models import SignalScore
from evaluation.scorefile import ScoreColumns, ScoreRules, read_parquet_batches
from evaluation.services import scores as scores_service
from evaluation.services import signal_scores_import, signal_version_create
from touchstone.errors import LocatedError

pytestmark = pytest.mark.django_db

PARIS = timezone(timedelta(hours=2))
TIMES = [datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC), datetime(2024, 5, 1, 10, 0, 0, 250_000, tzinfo=UTC),
         datetime(2024, 5, 2, 23, 59, 59, 999_999, tzinfo=PARIS), None, datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
         datetime(2023, 12, 31, 23, 0, tzinfo=PARIS)]


@pytest.fixture
def fast_calls(monkeypatch):
    """The fast path's outcomes, in order (True: the batch was stored by it)."""
    calls: list[bool] = []
    real = scores_service._clean_batch_insert

    def spy(version, batch):
        calls.append(real(version, batch))
        return calls[-1]

    monkeypatch.setattr(scores_service, "_clean_batch_insert", spy)
    return calls


def _parquet(path, external_ids, scores=None, labels=None, times=None, *, unit="us", tz="UTC", row_group_size=None):
    columns = {"source": ["t"] * len(external_ids), "external_id": external_ids}
    if scores is not None:
        columns["score"] = pa.array(scores, pa.float64())
    if labels is not None:
        columns["label"] = pa.array(labels, pa.string())
    if times is not None:
        columns["observed_at"] = pa.array(times, pa.timestamp(unit, tz=tz))
    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)


def _table(version) -> list[tuple]:
    """The stored rows as the database holds them (observed_at as its stored text), in insert order."""
    observed = "CAST(s.observed_at AS TEXT)" if connection.vendor == "sqlite" else "s.observed_at::text"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT i.external_id, s.score, s.label, {observed} FROM {SignalScore._meta.db_table} s "
                       "JOIN content_contentitem i ON i.id = s.item_id WHERE s.version_id = %s ORDER BY s.id",
                       [version.pk])
        return cursor.fetchall()


def _row_by_row(monkeypatch) -> None:
    monkeypatch.setattr(scores_service, "_clean_batch_insert", lambda version, batch: False)


def test_fast_path_stores_exactly_what_the_row_by_row_path_stores(tmp_path, label_version, items, ops, monkeypatch,
                                                                   fast_calls):
    path = tmp_path / "s.parquet"
    _parquet(path, [f"i{i}" for i in range(6)], scores=[0.0, 0.1, None, 1.0, 1 / 3, 0.7],
             labels=["insult", "threat", "insult", "not_harassment", "threat", "insult"], times=TIMES)
    fast = signal_scores_import(path=path, version=label_version, acting_user=ops, batch_size=4)
    assert fast_calls == [True, True]
    other = signal_version_create(signal=label_version.signal, acting_user=ops)
    _row_by_row(monkeypatch)
    slow = signal_scores_import(path=path, version=other, acting_user=ops, batch_size=4)
    assert (fast.imported, slow.imported) == (6, 6)
    assert _table(label_version) == _table(other)
    stored = _table(label_version)
    assert [row[1] for row in stored] == [0.0, 0.1, None, 1.0, 1 / 3, 0.7]
    if connection.vendor == "sqlite":  # Django's own text: UTC, no offset, no fraction at 0 microseconds
        assert [row[3] for row in stored] == ["2024-05-01 10:00:00", "2024-05-01 10:00:00.250000",
                                              "2024-05-02 21:59:59.999999", None, "2024-01-02 03:04:05.000006",
                                              "2023-12-31 21:00:00"]
    assert [s.observed_at for s in SignalScore.objects.filter(version=label_version).order_by("pk")] == TIMES


@pytest.mark.parametrize("unit", ["s", "ms", "us"])
def test_observed_at_text_of_every_unit_and_zone_matches_djangos(unit):
    times = [datetime(2024, 5, 1, 10, tzinfo=UTC), datetime(2024, 5, 1, 10, 0, 1, 123_000, tzinfo=UTC), None]
    if unit == "s":
        times[1] = times[1].replace(microsecond=0)
    for tz in ("UTC", "+02:00", "America/New_York"):
        batch = pa.record_batch({"source": ["t"] * 3, "external_id": ["a", "b", "c"], "score": [0.5] * 3,
                                 "observed_at": pa.array(times, pa.timestamp(unit, tz=tz))})
        columns = ScoreColumns(batch, 1)
        expected = [None if t is None else t.astimezone(UTC).replace(tzinfo=None).isoformat(" ") for t in times]
        assert columns.observed_at_text() == expected
        assert columns.observed_at_text(utc_suffix="+00:00") == [None if e is None else e + "+00:00"
                                                                  for e in expected]
        assert [row.observed_at for row in columns.rows()] == times


def test_jsonl_clean_batches_take_the_fast_path_and_store_the_same_rows(tmp_path, score_version, items, ops,
                                                                       monkeypatch, fast_calls):
    path = tmp_path / "s.jsonl"
    path.write_text("".join(json.dumps({"source": "t", "external_id": f"i{i}", "score": i / 10,
                                        **({"observed_at": t.isoformat()} if t else {})}) + "\n"
                            for i, t in enumerate(TIMES)))
    signal_scores_import(path=path, version=score_version, acting_user=ops, batch_size=3)
    assert fast_calls == [True, True]
    other = signal_version_create(signal=score_version.signal, acting_user=ops)
    _row_by_row(monkeypatch)
    signal_scores_import(path=path, version=other, acting_user=ops, batch_size=3)
    assert _table(score_version) == _table(other) and len(_table(other)) == 6


def test_a_batch_with_one_bad_row_reports_it_at_its_line_and_keeps_the_rest(tmp_path, score_version, items, ops,
                                                                           fast_calls):
    path = tmp_path / "s.parquet"
    _parquet(path, [f"i{i}" for i in range(6)], scores=[0.1, 0.2, 0.3, 1.5, 0.5, 0.6])
    errors = []
    job = signal_scores_import(path=path, version=score_version, acting_user=ops, batch_size=2,
                               on_error=errors.append)
    assert [str(e) for e in errors] == [f"{path}:4: score: 1.5 is outside [0, 1]"]
    assert fast_calls == [True, True]  # batches 1 and 3; batch 2 (lines 3-4) went row by row
    assert [row[0] for row in _table(score_version)] == ["i0", "i1", "i2", "i4", "i5"]
    assert (job.lines_read, job.imported, job.rejected, job.duplicates, job.unknown) == (6, 5, 1, 0, 0)
    assert job.errors == [{"line": 4, "field": "score", "reason": "1.5 is outside [0, 1]"}]


def test_duplicates_in_a_batch_and_stored_before_are_reported_as_before(tmp_path, score_version, items, ops,
                                                                        fast_calls):
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    _parquet(first, ["i0", "i1"], scores=[0.1, 0.2])
    _parquet(second, ["i2", "i3", "i2", "i0", "i4", "i5"], scores=[0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    signal_scores_import(path=first, version=score_version, acting_user=ops)
    errors = []
    job = signal_scores_import(path=second, version=score_version, acting_user=ops, batch_size=4,
                               on_error=errors.append)
    assert [str(e) for e in errors] == [
        f"{second}:3: external_id: duplicate: clf@1 already has a score of t:i2 (line 1)",
        f"{second}:4: external_id: duplicate: clf@1 already has a score of t:i0 (stored before)"]
    assert (job.imported, job.duplicates, job.rejected) == (4, 2, 0)
    # the first file's batch, the second file's first batch (undone: duplicates), and no attempt on the next
    # batch right after duplicates
    assert fast_calls == [True, False]
    assert [(row[0], row[1]) for row in _table(score_version)] == [
        ("i0", 0.1), ("i1", 0.2), ("i2", 0.3), ("i3", 0.4), ("i4", 0.7), ("i5", 0.8)]


def test_unknown_items_are_counted_and_listed_and_the_fast_path_resumes_after(tmp_path, score_version, items, ops,
                                                                             fast_calls):
    path = tmp_path / "s.parquet"
    _parquet(path, ["i0", "nope-1", "i1", "nope-2", "i2", "i3", "i4", "i5"], scores=[0.5] * 8)
    job = signal_scores_import(path=path, version=score_version, acting_user=ops, batch_size=2)
    assert (job.imported, job.unknown, job.rejected) == (6, 2, 0)
    assert job.unknown_items == [{"source": "t", "external_id": "nope-1", "line": 2},
                                 {"source": "t", "external_id": "nope-2", "line": 4}]
    # batch 1 fails (unknown), batch 2 goes row by row (unknown again), batch 3 too; batch 4 tries again
    assert fast_calls == [False, True]
    assert [row[0] for row in _table(score_version)] == ["i0", "i1", "i2", "i3", "i4", "i5"]


def test_strict_keeps_nothing_when_a_later_batch_has_a_bad_row(tmp_path, score_version, items, ops, fast_calls):
    path = tmp_path / "s.parquet"
    _parquet(path, [f"i{i}" for i in range(5)], scores=[0.1, 0.2, 0.3, 0.4, float("nan")])
    with pytest.raises(LocatedError, match=r"s.parquet:5: score: nan is outside \[0, 1\]"):
        signal_scores_import(path=path, version=score_version, acting_user=ops, strict=True, batch_size=2)
    assert fast_calls == [True, True]
    assert not SignalScore.objects.exists()


def test_batches_have_the_asked_size_whatever_the_row_groups(tmp_path, score_version, items, ops, fast_calls):
    path = tmp_path / "s.parquet"
    _parquet(path, [f"i{i}" for i in range(12)], scores=[i / 12 for i in range(12)], row_group_size=3)
    progress = []
    job = signal_scores_import(path=path, version=score_version, acting_user=ops, batch_size=5,
                               on_progress=progress.append)
    assert progress == [5, 10, 12]
    assert fast_calls == [True, True, True]
    assert (job.lines_read, job.imported) == (12, 12)
    assert [row[1] for row in _table(score_version)] == [i / 12 for i in range(12)]


def test_parquet_batches_keep_row_numbers_across_row_groups():
    buffer = io.BytesIO()
    pq.write_table(pa.table({"source": ["t"] * 7, "external_id": [f"i{i}" for i in range(7)],
                             "score": [0.1, 0.2, 0.3, 2.0, 0.5, 0.6, 0.7]}), buffer, row_group_size=2)
    buffer.seek(0)
    rules = ScoreRules(output_type="score", taxonomy=frozenset({"insult"}))
    chunks = list(read_parquet_batches(buffer, path="f.parquet", rules=rules, batch_rows=3))
    assert [type(c) for c in chunks] == [ScoreColumns, list, ScoreColumns]
    assert [len(c) for c in chunks] == [3, 3, 1]
    assert (chunks[0].first_line, chunks[2].first_line) == (1, 7)
    assert chunks[0].external_ids() == ["i0", "i1", "i2"] and chunks[2].scores() == [0.7]
    assert [getattr(r, "line", None) for r in chunks[1]] == [4, 5, 6]
    assert str(chunks[1][0]) == "f.parquet:4: score: 2.0 is outside [0, 1]"
