"""Importing scores from JSONL, CSV and Parquet, and API batches: bad rows at their line,
strict roll-back, unknown items listed, duplicates refused, permissions."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evaluation.models import SignalScore, SignalScoreImport
from evaluation.services import ScoreRowsInvalid, signal_scores_add, signal_scores_import
from touchstone.errors import LocatedError, PermissionDenied
from touchstone.models import AuditEvent

pytestmark = pytest.mark.django_db


def _jsonl(path, rows) -> None:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))


def _stored(version) -> dict[str, tuple]:
    return {s.item.external_id: (s.score, s.label) for s in SignalScore.objects.filter(version=version)
            .select_related("item")}


def test_jsonl_import_keeps_good_rows_reports_bad_ones_and_lists_unknown_items(tmp_path, score_version, items, ops):
    path = tmp_path / "scores.jsonl"
    _jsonl(path, [
        {"source": "t", "external_id": "i0", "score": 0.9, "observed_at": "2024-05-01T10:00:00+02:00"},
        {"source": "t", "external_id": "i1", "score": 1.2},
        {"source": "t", "external_id": "i2", "score": 0.1, "label": "insult"},
        {"source": "t", "external_id": "i3", "score": 0.3, "label": "bogus"},
        {"source": "t", "external_id": "missing-1", "score": 0.3},
        {"source": "other", "external_id": "i4", "score": 0.3},
        {"source": "t", "external_id": "i0", "score": 0.2},
        "{broken",
    ])
    errors = []
    job = signal_scores_import(path=path, version=score_version, acting_user=ops, on_error=errors.append)
    assert [str(e) for e in errors] == [
        f"{path}:2: score: 1.2 is outside [0, 1]",
        f"{path}:4: label: 'bogus' is not in the taxonomy (allowed: hate_harassment, insult, not_harassment, "
        "sexual_harassment, threat)",
        f"{path}:7: external_id: duplicate: clf@1 already has a score of t:i0 (line 1)",
        f"{path}:8: malformed JSON: Expecting property name enclosed in double quotes at column 2",
    ]
    assert _stored(score_version) == {"i0": (0.9, ""), "i2": (0.1, "insult")}
    assert SignalScore.objects.get(version=score_version, item=items[0]).observed_at == datetime(
        2024, 5, 1, 8, tzinfo=UTC)
    assert (job.status, job.lines_read, job.imported, job.rejected, job.duplicates, job.unknown) == (
        "finished", 8, 2, 3, 1, 2)
    assert job.unknown_items == [{"source": "t", "external_id": "missing-1", "line": 5},
                                 {"source": "other", "external_id": "i4", "line": 6}]
    event = AuditEvent.objects.get(event_type="signal_scores.imported")
    assert (event.actor, event.details["imported"]) == (ops, 2)


def test_a_second_import_may_append_but_never_rescore_an_item(tmp_path, score_version, items, ops):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    _jsonl(first, [{"source": "t", "external_id": "i0", "score": 0.9}])
    _jsonl(second, [{"source": "t", "external_id": "i0", "score": 0.1},
                    {"source": "t", "external_id": "i1", "score": 0.2}])
    signal_scores_import(path=first, version=score_version, acting_user=ops)
    job = signal_scores_import(path=second, version=score_version, acting_user=ops)
    assert (job.imported, job.duplicates) == (1, 1)
    assert "stored before" in job.errors[0]["reason"]
    assert _stored(score_version) == {"i0": (0.9, ""), "i1": (0.2, "")}


def test_strict_import_rolls_everything_back_at_the_first_bad_line(tmp_path, score_version, items, ops):
    path = tmp_path / "scores.jsonl"
    _jsonl(path, [{"source": "t", "external_id": f"i{i}", "score": 0.5} for i in range(6)]
           + [{"source": "t", "external_id": "i7", "score": -0.1}])
    with pytest.raises(LocatedError, match=r"scores.jsonl:7: score: -0.1 is outside \[0, 1\]"):
        signal_scores_import(path=path, version=score_version, acting_user=ops, strict=True, batch_size=2)
    assert not SignalScore.objects.exists()
    assert SignalScoreImport.objects.get().status == "failed"
    assert not score_version.has_scores()  # the version stays editable


def test_csv_import_of_a_label_signal(tmp_path, label_version, items, ops):
    path = tmp_path / "labels.csv"
    path.write_text("source,external_id,label,score,observed_at\n"
                    "t,i0,insult,0.8,2024-01-02T03:04:05Z\n"
                    "t,i1,,0.4,\n"
                    "t,i2,threat,,\n")
    errors = []
    job = signal_scores_import(path=path, version=label_version, acting_user=ops, on_error=errors.append)
    assert [str(e) for e in errors] == [f"{path}:3: label: missing: this signal gives a label on every row"]
    assert _stored(label_version) == {"i0": (0.8, "insult"), "i2": (None, "threat")}
    assert job.imported == 2


def test_a_csv_without_the_key_columns_fails_as_a_whole(tmp_path, label_version, items, ops):
    path = tmp_path / "labels.csv"
    path.write_text("external_id,label\ni0,insult\n")
    with pytest.raises(LocatedError, match=r"labels.csv:1: source: missing column"):
        signal_scores_import(path=path, version=label_version, acting_user=ops)
    assert SignalScoreImport.objects.get().status == "failed"
    assert not SignalScore.objects.exists()


def test_parquet_import_names_rows_by_number(tmp_path, score_version, items, ops):
    path = tmp_path / "scores.parquet"
    pq.write_table(pa.table({"source": ["t"] * 4, "external_id": ["i0", "i1", "i2", "nope"],
                             "score": [0.25, 7.0, 0.75, 0.5]}), path)
    errors = []
    job = signal_scores_import(path=path, version=score_version, acting_user=ops, on_error=errors.append)
    assert [str(e) for e in errors] == [f"{path}:2: score: 7.0 is outside [0, 1]"]
    assert _stored(score_version) == {"i0": (0.25, ""), "i2": (0.75, "")}
    assert (job.unknown, job.unknown_items) == (1, [{"source": "t", "external_id": "nope", "line": 4}])


def test_only_ops_import_scores(tmp_path, score_version, items, pipeline, author):
    path = tmp_path / "scores.jsonl"
    _jsonl(path, [{"source": "t", "external_id": "i0", "score": 0.9}])
    for user in (pipeline, author):
        with pytest.raises(PermissionDenied, match="evaluation.add_signalscore"):
            signal_scores_import(path=path, version=score_version, acting_user=user)
        with pytest.raises(PermissionDenied):
            signal_scores_add(version=score_version, rows=[], acting_user=user)
    assert not SignalScoreImport.objects.exists()


def test_an_api_batch_is_all_or_nothing_and_lists_every_bad_row(score_version, items, ops):
    rows = [{"source": "t", "external_id": "i0", "score": 0.5},
            {"source": "t", "external_id": "i1", "score": "high"},
            {"source": "t", "external_id": "i0", "score": 0.4},
            ["not", "an", "object"]]
    with pytest.raises(ScoreRowsInvalid) as caught:
        signal_scores_add(version=score_version, rows=rows, acting_user=ops)
    assert caught.value.message == "rows[1].score: 'high' is not a number (and 2 more bad rows); nothing was stored"
    assert caught.value.extra["errors"] == [
        {"index": 1, "field": "score", "reason": "'high' is not a number"},
        {"index": 2, "field": "external_id", "reason": "duplicate: clf@1 already has a score of t:i0 (line 0)"},
        {"index": 3, "field": None, "reason": "expected a JSON object"}]
    assert not SignalScore.objects.exists() and not SignalScoreImport.objects.exists()
    job = signal_scores_add(version=score_version, rows=rows[:1] + [{"source": "t", "external_id": "zz",
                                                                     "score": 0.1}], acting_user=ops)
    assert (job.imported, job.unknown, job.path) == (1, 1, "api")
    assert AuditEvent.objects.filter(event_type="signal_scores.added").count() == 1
