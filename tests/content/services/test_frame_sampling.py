"""``sample draw``: a sample drawn from a Parquet/CSV frame, only its members imported, with
their π and the frame's N and strata; bad input leaves nothing behind."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command

from content.frames import Design
from content.models import ContentImport, ContentItem, Sample, SampleMember
from content.sampling import pps_probabilities
from content.services.frames import FrameContent, sample_draw
from content.services.sampling import SamplingFailed
from touchstone.audit import AuditEvent
from touchstone.errors import PermissionDenied

pytestmark = pytest.mark.django_db

N = 2000


@pytest.fixture
def table() -> pa.Table:
    rng = np.random.default_rng(0)
    impressions = rng.integers(0, 100, N)
    impressions[0] = 1_000_000
    return pa.table({"id": np.arange(N, dtype=np.int64) + 10_000, "impressions": impressions,
                     "country": rng.choice(["NG", "IN", "US"], N), "score": rng.random(N),
                     "query": [f"question {i}" for i in range(N)], "response": [f"answer {i}" for i in range(N)],
                     "surface": ["chat"] * N})


@pytest.fixture
def hive(tmp_path: Path, table: pa.Table) -> str:
    path = tmp_path / "impressions"
    pq.write_to_dataset(table, path, partition_cols=["country"])
    return str(path)


def nothing_written() -> bool:
    return not (Sample.objects.exists() or ContentItem.objects.exists() or SampleMember.objects.exists()
                or ContentImport.objects.exists())


def test_impression_weighted_draw_imports_only_the_members(hive: str, table: pa.Table, cli_user) -> None:
    sample = sample_draw(name="views", frame_location=hive, acting_user=cli_user, source="impressions",
                         design=Design("stratified", 60, seed=3, stratify_by="country", weight_column="impressions"))
    assert (sample.method, sample.frame_size, sample.size, sample.requested_size) == ("stratified", N, 60, 60)
    assert sample.expected_size == pytest.approx(60)
    assert ContentItem.objects.count() == 60 and sample.members.count() == 60
    assert sample.parameters["weight_column"] == "impressions" and sample.parameters["frame"] == hive
    assert "order sampling" in sample.parameters["selection"]
    countries = table.column("country").to_pylist()
    assert {h: s["frame"] for h, s in sample.strata.items()} == {c: countries.count(c) for c in set(countries)}
    truth = {str(r["id"]): r for r in table.to_pylist()}
    for member in sample.members.select_related("item"):
        row = truth[member.item.external_id]
        assert member.item.parts == {"query": row["query"], "response": row["response"]}
        assert member.item.metadata["country"] == row["country"] == member.stratum
        assert member.item.metadata["impressions"] == row["impressions"]
        stratum = [r for r in table.to_pylist() if r["country"] == row["country"]]
        weights = np.array([r["impressions"] for r in stratum], dtype=float)
        pi = pps_probabilities(weights, sample.strata[row["country"]]["sample"])
        assert member.inclusion_probability == pytest.approx(pi[[r["id"] for r in stratum].index(row["id"])])
    assert AuditEvent.objects.filter(event_type="sample.drawn", actor=cli_user).count() == 1


def test_same_name_is_refused_and_the_same_seed_reuses_the_items(hive: str, cli_user) -> None:
    design = Design("uniform", 20, seed=1)
    first = sample_draw(name="a", frame_location=hive, design=design, acting_user=cli_user)
    with pytest.raises(SamplingFailed, match="exists already"):
        sample_draw(name="a", frame_location=hive, design=design, acting_user=cli_user)
    again = sample_draw(name="b", frame_location=hive, design=design, acting_user=cli_user)
    assert ContentItem.objects.count() == 20  # same source and ids: the items are reused
    assert (set(first.members.values_list("item_id", flat=True))
            == set(again.members.values_list("item_id", flat=True)))
    assert set(first.members.values_list("inclusion_probability", flat=True)) == {20 / N}


def test_content_from_a_content_file_keyed_by_id(tmp_path: Path, cli_user) -> None:
    frame = tmp_path / "frame.csv"
    frame.write_text("id,impressions\n" + "".join(f"u{i},{i % 7}\n" for i in range(300)))
    content = tmp_path / "content.jsonl"
    content.write_text("".join(json.dumps({"external_id": f"u{i}", "components": {"text": f"post {i}"},
                                           "metadata": {"lang": "en"}}) + "\n" for i in range(300))
                       + "not json\n")
    sample = sample_draw(name="cf", frame_location=str(frame), source="posts", acting_user=cli_user,
                         design=Design("uniform", 25, 4, weight_column="impressions"),
                         content=FrameContent(content_file=content))
    assert sample.size == 25 and ContentItem.objects.count() == 25
    for item in ContentItem.objects.all():
        assert item.parts == {"text": f"post {item.external_id[1:]}"} and item.metadata == {"lang": "en"}
        assert int(item.external_id[1:]) % 7 != 0  # rows without views are never drawn


def test_a_drawn_id_missing_from_the_content_file_writes_nothing(tmp_path: Path, cli_user) -> None:
    frame = tmp_path / "frame.parquet"
    pq.write_table(pa.table({"id": np.arange(100)}), frame)
    content = tmp_path / "content.jsonl"
    content.write_text("".join(json.dumps({"external_id": str(i), "components": {"text": "x"}}) + "\n"
                               for i in range(50)))
    with pytest.raises(SamplingFailed, match="drawn ids are not in the content file"):
        sample_draw(name="m", frame_location=str(frame), design=Design("uniform", 30, 1),
                    content=FrameContent(content_file=content), acting_user=cli_user)
    assert nothing_written()


def test_a_part_over_the_limit_names_file_row_and_column(tmp_path: Path, cli_user, settings) -> None:
    settings.CONTENT_MAX_PART_CHARS = 10
    frame = tmp_path / "frame.parquet"
    pq.write_table(pa.table({"id": np.arange(5), "text": ["short", "short", "x" * 20, "short", "short"]}), frame)
    with pytest.raises(SamplingFailed) as caught:
        sample_draw(name="m", frame_location=str(frame), design=Design("uniform", 5, 1), acting_user=cli_user)
    assert caught.value.message == (f"{frame}: row 3: column 'components.text': 20 characters exceeds the limit "
                                    "of 10")
    assert nothing_written()


def test_bad_weights_write_nothing(tmp_path: Path, cli_user) -> None:
    frame = tmp_path / "frame.parquet"
    pq.write_table(pa.table({"id": np.arange(5), "text": ["a"] * 5, "impressions": [1, 2, -3, 4, 5]}), frame)
    with pytest.raises(SamplingFailed) as caught:
        sample_draw(name="m", frame_location=str(frame), acting_user=cli_user,
                    design=Design("uniform", 2, 1, weight_column="impressions"))
    assert caught.value.extra == {"path": str(frame), "row": "row 3", "column": "impressions",
                                  "reason": "-3.0: weights must not be negative"}
    assert nothing_written()


def test_drawing_needs_the_add_sample_permission(hive: str, author) -> None:
    with pytest.raises(PermissionDenied, match="may not draw a sample"):
        sample_draw(name="x", frame_location=hive, design=Design("uniform", 2, 1), acting_user=author)


def test_command_end_to_end_with_json(hive: str, cli_user) -> None:
    out = StringIO()
    call_command("sample", "draw", "cmd", "--frame", hive, "--design", "score-weighted", "--size", "40",
                 "--seed", "9", "--score-column", "score", "--floor", "0.05", "--weight-column", "impressions",
                 "--parts", "query", "--metadata-columns", "country,surface", "--json", stdout=out)
    document = json.loads(out.getvalue())
    assert (document["sample"], document["method"], document["frame_size"], document["size"]) == (
        "cmd", "score_weighted", N, 40)
    assert document["parameters"]["score_column"] == "score" and document["parameters"]["floor"] == 0.05
    assert document["strata"][""]["certain"] == 1  # the viral row
    item = Sample.objects.get(name="cmd").members.first().item
    assert set(item.parts) == {"query"} and set(item.metadata) == {"country", "surface"} and "score" in item.scores
    text = StringIO()
    call_command("sample", "show", "cmd", stdout=text)
    assert "40 of 2000 items" in text.getvalue()


def test_command_errors_are_one_line(tmp_path: Path, hive: str, cli_user) -> None:
    with pytest.raises(CommandError, match="the glob matches no file"):
        call_command("sample", "draw", "e", "--frame", str(tmp_path / "*.parquet"), "--design", "uniform",
                     "--size", "3", "--seed", "1")
    with pytest.raises(CommandError, match="column 'views': no such column"):
        call_command("sample", "draw", "e", "--frame", hive, "--design", "uniform", "--size", "3", "--seed", "1",
                     "--weight-column", "views")
    with pytest.raises(CommandError, match="column 'body': no such column"):
        call_command("sample", "draw", "e", "--frame", hive, "--design", "uniform", "--size", "3", "--seed", "1",
                     "--metadata-columns", "body")
    with pytest.raises(CommandError, match="sample size 5000 exceeds the frame's 2000 rows"):
        call_command("sample", "draw", "e", "--frame", hive, "--design", "uniform", "--size", "5000", "--seed", "1")
    assert nothing_written()


def test_frame_size_holds_billions(cli_user) -> None:
    sample = Sample.objects.create(name="big", method="uniform", seed=1, frame_size=5_000_000_000, requested_size=1,
                                   size=1, expected_size=1.0)
    sample.refresh_from_db()
    assert sample.frame_size == 5_000_000_000


def test_text_ids_with_spaces_and_unreadable_content_lines(tmp_path: Path, cli_user) -> None:
    frame = tmp_path / "frame.parquet"
    pq.write_table(pa.table({"id": [f" p{i} " for i in range(40)], "text": [f"t{i}" for i in range(40)]}), frame)
    sample = sample_draw(name="s", frame_location=str(frame), design=Design("uniform", 10, 1), acting_user=cli_user)
    assert sample.size == 10 and all(not e.startswith(" ") for e in ContentItem.objects.values_list("external_id",
                                                                                                   flat=True))
    content = tmp_path / "content.jsonl"
    content.write_text("{broken\n" * 3)
    with pytest.raises(SamplingFailed, match=r"10 drawn ids are not in the content file .*3 lines could not be read"):
        sample_draw(name="t", frame_location=str(frame), design=Design("uniform", 10, 1), acting_user=cli_user,
                    content=FrameContent(content_file=content))


def test_command_text_output_names_the_frame_and_strata(hive: str, cli_user) -> None:
    out = StringIO()
    call_command("sample", "draw", "txt", "--frame", hive, "--design", "stratified", "--size", "30", "--seed", "2",
                 "--stratify-by", "country", stdout=out)
    text = out.getvalue()
    assert f"30 of 2000 rows of {hive}" in text and "seed 2" in text
    assert sum(int(line.split(":")[1].split(" of ")[0]) for line in text.splitlines()[1:]) == 30
