"""Reading score files (pure): every bad row located as PATH:LINE: field: reason."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evaluation.scorefile import ScoreFileError, ScoreRules, file_format, read_scores
from touchstone.lines import LineError

LABELS = ScoreRules(output_type="label", taxonomy=frozenset({"ok", "bad"}))
SCORES = ScoreRules(output_type="score", taxonomy=frozenset({"ok", "bad"}))


def _messages(records) -> list[str]:
    return [str(r) for r in records if isinstance(r, LineError)]


def test_jsonl_rows_and_their_errors_by_line():
    text = "\n".join([
        '{"source": "s", "external_id": 7, "score": 0.5, "observed_at": "2024-05-01T10:00:00Z"}',
        '{"source": "s", "external_id": "a", "score": 1.5}',
        '{"source": "s", "external_id": "b", "score": true}',
        '{"source": "s", "external_id": "c"}',
        "not json",
        '{"source": "s", "external_id": "d", "score": 0.1, "colour": "red"}',
        '{"source": "s", "external_id": "e", "score": 0.1, "label": "nope"}',
        '{"source": "s", "external_id": "f", "score": 0.1, "observed_at": "2024-05-01T10:00:00"}',
        '{"source": "", "external_id": "g", "score": 0.1}',
        '{"source": "s", "external_id": "h", "score": NaN}',
    ])
    records = list(read_scores(io.StringIO(text), fmt="jsonl", path="f.jsonl", rules=SCORES))
    first = records[0]
    assert (first.line, first.external_id, first.score) == (1, "7", 0.5)
    assert first.observed_at == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert _messages(records) == [
        "f.jsonl:2: score: 1.5 is outside [0, 1]",
        "f.jsonl:3: score: must be a number",
        "f.jsonl:4: score: missing: this signal gives a score on every row",
        "f.jsonl:5: malformed JSON: Expecting value at column 1",
        "f.jsonl:6: colour: unknown field; allowed: source, external_id, score, label, observed_at",
        "f.jsonl:7: label: 'nope' is not in the taxonomy (allowed: bad, ok)",
        "f.jsonl:8: observed_at: has no time zone (add Z or +00:00)",
        "f.jsonl:9: source: missing",
        "f.jsonl:10: score: nan is outside [0, 1]",
    ]


def test_csv_lines_count_the_header_and_label_signals_need_a_label():
    text = "source,external_id,label,score\ns,a,ok,0.9\ns,b,,0.2\ns,c,bad,x\ns,d\n"
    records = list(read_scores(io.StringIO(text), fmt="csv", path="f.csv", rules=LABELS))
    assert (records[0].line, records[0].label, records[0].score) == (2, "ok", 0.9)
    assert _messages(records) == ["f.csv:3: label: missing: this signal gives a label on every row",
                                  "f.csv:4: score: 'x' is not a number",
                                  "f.csv:5: 2 cells, the header has 4"]


def test_a_csv_header_without_the_key_or_with_an_unknown_column_fails_the_file():
    with pytest.raises(ScoreFileError, match="f.csv:1: external_id: missing column"):
        list(read_scores(io.StringIO("source,score\n"), fmt="csv", path="f.csv", rules=SCORES))
    with pytest.raises(ScoreFileError, match="f.csv:1: extra: unknown column"):
        list(read_scores(io.StringIO("source,external_id,score,extra\n"), fmt="csv", path="f.csv", rules=SCORES))


def test_parquet_rows_are_numbered_across_batches():
    table = pa.table({"source": ["s"] * 5, "external_id": [f"x{i}" for i in range(5)],
                      "score": [0.1, 0.2, 2.0, None, 0.5],
                      "observed_at": pa.array([datetime(2024, 1, 1, tzinfo=UTC)] * 5, pa.timestamp("us", tz="UTC"))})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    buffer.seek(0)
    from evaluation.scorefile import read_parquet

    records = list(read_parquet(buffer, path="f.parquet", rules=SCORES, batch_rows=2))
    assert [r.line for r in records if not isinstance(r, LineError)] == [1, 2, 5]
    assert _messages(records) == ["f.parquet:3: score: 2.0 is outside [0, 1]",
                                  "f.parquet:4: score: missing: this signal gives a score on every row"]
    assert records[0].observed_at == datetime(2024, 1, 1, tzinfo=UTC)


def test_not_parquet_and_unknown_suffixes_fail_the_file(tmp_path):
    with pytest.raises(ScoreFileError, match="not a Parquet file"):
        list(read_scores(io.BytesIO(b"nope"), fmt="parquet", path="f.parquet", rules=SCORES))
    with pytest.raises(ScoreFileError, match="unknown file type '.txt'"):
        file_format(tmp_path / "scores.txt")
    assert file_format(tmp_path / "scores.txt", "csv") == "csv"
    assert file_format(tmp_path / "S.PARQUET") == "parquet"
