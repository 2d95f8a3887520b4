"""Exports: formats, manifest and card, pseudonyms, digest check, round trip."""

from __future__ import annotations

import csv
import json
from io import StringIO

import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from goldsets.exports import goldset_version_export
from goldsets.freeze import FreezeRule
from goldsets.services import goldset_version_build, goldset_version_freeze_request
from touchstone.immutability import immutability_override

pytestmark = pytest.mark.django_db


@pytest.fixture
def frozen(labelled, published):
    version = goldset_version_freeze_request(name="gs", policy_version=published, rule=FreezeRule())
    return goldset_version_build(version_id=version.pk)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_every_format_has_every_item_manifest_and_card(frozen, tmp_path, fmt):
    result = goldset_version_export(version=frozen, fmt=fmt, output=tmp_path / "out", into_directory=True)
    assert result.path.name == f"gs-v1.{fmt}"
    if fmt == "jsonl":
        rows = [json.loads(line) for line in result.path.read_text().splitlines()]
    elif fmt == "csv":
        rows = list(csv.DictReader(result.path.open()))
        for row in rows:
            row["labels"] = json.loads(row["labels"])
    else:
        rows = pq.read_table(result.path).to_pylist()
    assert len(rows) == 31
    assert [row["external_id"] for row in rows] == sorted(row["external_id"] for row in rows)
    labelers = {label["labeler"] for row in rows for label in row["labels"]}
    assert labelers and all(name.startswith("L-") for name in labelers)  # pseudonymized by default
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["digest"]["sha256"] == frozen.digest and manifest["items"] == 31
    assert manifest["file_sha256"] == result.file_sha256 and "gold_label" in manifest["schema"]
    card = result.card_path.read_text()
    assert "# gs v1" in card and "Krippendorff" in card and "Known limitations" in card


def test_pseudonyms_are_stable_within_a_set_and_differ_across_sets(frozen, labelled, published, tmp_path):
    first = goldset_version_export(version=frozen, fmt="jsonl", output=tmp_path / "a.jsonl")
    again = goldset_version_export(version=frozen, fmt="jsonl", output=tmp_path / "b.jsonl")
    assert first.path.read_bytes() == again.path.read_bytes()
    other = goldset_version_build(version_id=goldset_version_freeze_request(
        name="other", policy_version=published, rule=FreezeRule()).pk)
    elsewhere = goldset_version_export(version=other, fmt="jsonl", output=tmp_path / "c.jsonl")
    def names(path):
        return {entry["labeler"] for line in path.read_text().splitlines() for entry in json.loads(line)["labels"]}

    assert names(first.path).isdisjoint(names(elsewhere.path))


def test_raw_ids_need_the_permission(frozen, tmp_path, django_user_model):
    from django.contrib.auth.models import Group

    nobody = django_user_model.objects.create_user("nobody")
    ops = django_user_model.objects.create_user("ops")
    ops.groups.add(Group.objects.get(name="labeling ops"))
    path = tmp_path / "raw.jsonl"
    with pytest.raises(CommandError, match="may not see raw labeler ids"):
        call_command("goldset", "export", "gs", "--format", "jsonl", "--output", str(path), "--raw-ids",
                     "--user", "nobody", stdout=StringIO())
    assert not path.exists()
    call_command("goldset", "export", "gs", "--format", "jsonl", "--output", str(path), "--raw-ids",
                 "--user", "ops", stdout=StringIO())
    assert "ann0" in path.read_text() and "rule_ids" not in path.read_text()  # the documented label fields
    del nobody


@pytest.mark.parametrize(("column", "fmt"), [
    ("labels", "csv"),  # CSV and raw-id exports are built from the frozen columns
    ("export_head", "jsonl"),  # pseudonymized JSONL and Parquet from the frozen export heads
    ("export_head", "parquet"),
])
def test_a_tampered_version_refuses_to_export_and_writes_nothing(frozen, tmp_path, column, fmt):
    # The triggers refuse this; a database restored without them, or edited past them, must still fail.
    with immutability_override("test: tamper"), connection.cursor() as cursor:
        if column == "labels":
            cursor.execute("UPDATE goldsets_goldenitem SET labels = '[]' WHERE position = 3")
        else:  # the gold label inside the head changed, the column left as it was
            cursor.execute("UPDATE goldsets_goldenitem SET export_head = replace(export_head, "
                           "'\"gold_label\":\"' || gold_label, '\"gold_label\":\"x' || gold_label) "
                           "WHERE position = 3")
            assert cursor.rowcount == 1
    out = tmp_path / f"x.{fmt}"
    with pytest.raises(CommandError, match="digest"):
        call_command("goldset", "export", "gs", "--format", fmt, "--output", str(out), stdout=StringIO())
    assert list(tmp_path.iterdir()) == []
    from goldsets.exports import DigestMismatch, goldset_version_verify
    from goldsets.models import GoldenSetVersion

    with pytest.raises(DigestMismatch):  # what pages and the API check before their first byte
        goldset_version_verify(version=GoldenSetVersion.objects.get(golden_set__name="gs"))


def test_a_version_frozen_before_heads_were_digested_still_checks_its_exports(frozen, tmp_path):
    from goldsets.exports import goldset_version_verify
    from goldsets.models import GoldenSetVersion

    with immutability_override("test: a version from before migration 0004"), connection.cursor() as cursor:
        cursor.execute("UPDATE goldsets_goldensetversion SET heads_sha256 = NULL")
    version = GoldenSetVersion.objects.get(golden_set__name="gs")
    assert goldset_version_verify(version=version) == version.digest
    call_command("goldset", "export", "gs", "--format", "jsonl", "--output", str(tmp_path / "ok.jsonl"),
                 stdout=StringIO())
    with immutability_override("test: tamper"), connection.cursor() as cursor:
        cursor.execute("UPDATE goldsets_goldenitem SET export_head = replace(export_head, "
                       "'\"gold_label\":\"' || gold_label, '\"gold_label\":\"x' || gold_label) WHERE position = 3")
    with pytest.raises(CommandError, match="stored items hash to"):  # the canonical digest, from the heads
        call_command("goldset", "export", "gs", "--format", "jsonl", "--output", str(tmp_path / "x.jsonl"),
                     stdout=StringIO())


def test_the_manifest_lineage_recorded_at_freeze_is_what_the_items_say(frozen):
    from goldsets.exports import lineage_of, manifest
    from goldsets.models import GoldenSetVersion

    version = GoldenSetVersion.objects.get(golden_set__name="gs")
    assert version.lineage_summary == lineage_of(version)
    assert manifest(version, fmt="jsonl", raw_ids=False)["lineage"] == lineage_of(version)


def test_heads_digest_is_the_hash_of_what_the_export_writes_and_verify_still_checks_the_columns(frozen, tmp_path):
    import hashlib

    from goldsets.exports import DigestMismatch, goldset_version_verify
    from goldsets.models import GoldenSetVersion

    version = GoldenSetVersion.objects.get(golden_set__name="gs")
    export = tmp_path / "gs.jsonl"
    call_command("goldset", "export", "gs", "--format", "jsonl", "--output", str(export), stdout=StringIO())
    heads = b"".join(line[:line.index(b',"components":')] + b"\n" for line in export.read_bytes().splitlines())
    assert version.heads_sha256 == hashlib.sha256(heads).hexdigest()
    # Tamper with a head and record the tampered heads' hash: exports pass, verify does not.
    with immutability_override("test: tamper past the heads digest"), connection.cursor() as cursor:
        cursor.execute("UPDATE goldsets_goldenitem SET export_head = replace(export_head, "
                       "'\"gold_label\":\"' || gold_label, '\"gold_label\":\"x' || gold_label) WHERE position = 3")
        cursor.execute("SELECT export_head FROM goldsets_goldenitem WHERE version_id = %s ORDER BY position",
                       [version.pk])
        forged = hashlib.sha256(b"".join(row[0].encode() + b"\n" for row in cursor.fetchall())).hexdigest()
        cursor.execute("UPDATE goldsets_goldensetversion SET heads_sha256 = %s", [forged])
    with pytest.raises(DigestMismatch, match="stored items hash to"):
        goldset_version_verify(version=GoldenSetVersion.objects.get(pk=version.pk))


def test_export_imported_into_an_empty_database_freezes_to_the_same_digest(published, tmp_path, cli_user):
    content = tmp_path / "items.jsonl"
    content.write_text("".join(json.dumps({"external_id": f"c{n}", "components": {"text": f"message {n}"},
                                           "metadata": {"n": n}}) + "\n" for n in range(25)))
    labels = tmp_path / "labels.jsonl"
    options = ["insult", "not_harassment", "threat"]
    labels.write_text("".join(
        json.dumps({"external_id": f"c{n}", "labeler": f"person{(n + k) % 5}", "vendor": "acme",
                    "label": options[(n * k) % 3 if n % 4 else 0],
                    "labeled_at": "2025-01-02T03:04:05+00:00"}) + "\n"
        for n in range(25) for k in range(3)))
    quiet = {"stdout": StringIO(), "stderr": StringIO()}
    call_command("content", "import", str(content), "--source", "rt", **quiet)
    call_command("labels", "import", str(labels), "--policy", "harassment", "--source", "rt", **quiet)
    out = StringIO()
    call_command("goldset", "freeze", "rt", "--policy", "harassment", stdout=out)
    digest = out.getvalue().split("digest ")[1].split()[0]
    export = tmp_path / "export.jsonl"
    call_command("goldset", "export", "rt", "--format", "jsonl", "--output", str(export), **quiet)
    first_line = json.loads(export.read_text().splitlines()[0])
    assert first_line["labels"][0]["labeled_at"] == "2025-01-02T03:04:05+00:00"

    # empty the database of everything the export holds
    with immutability_override("test: empty the database"), connection.cursor() as cursor:
        for table in ("goldsets_goldenitem", "goldsets_goldensetversion", "goldsets_goldenset_owners",
                      "goldsets_goldenset", "review_humanlabel", "review_labeler", "review_vendor",
                      "content_contentitem"):
            cursor.execute(f"DELETE FROM {table}")

    call_command("content", "import", str(export), "--source", "rt", **quiet)
    call_command("labels", "import", str(export), "--policy", "harassment", "--source", "rt", **quiet)
    out = StringIO()
    call_command("goldset", "freeze", "rt", "--policy", "harassment", stdout=out)
    assert f"digest {digest}" in out.getvalue()


def test_jsonl_lines_from_frozen_heads_equal_the_records_of_the_frozen_columns(frozen):
    from goldsets.exports import export_records, jsonl_chunks
    from goldsets.models import GoldenSetVersion

    version = GoldenSetVersion.objects.get(golden_set__name="gs")
    lines = [json.loads(line) for line in b"".join(jsonl_chunks(version)).splitlines()]
    assert lines == list(export_records(version)) and len(lines) == version.item_count
    raw = [json.loads(line) for line in b"".join(jsonl_chunks(version, raw_ids=True)).splitlines()]
    assert raw == list(export_records(version, raw_ids=True))
    assert {label["labeler"] for line in lines for label in line["labels"]}.isdisjoint(
        {label["labeler"] for line in raw for label in line["labels"]})


def test_parquet_rows_carry_the_frozen_columns(frozen, tmp_path):
    from goldsets.exports import export_records

    result = goldset_version_export(version=frozen, fmt="parquet", output=tmp_path / "x.parquet")
    rows = pq.read_table(result.path).to_pylist()
    records = list(export_records(frozen))
    assert len(rows) == len(records) == frozen.item_count
    for row, record in zip(rows, records, strict=True):
        assert json.loads(row["metadata"]) == record["metadata"] and json.loads(row["lineage"]) == record["lineage"]
        assert row["labels"] == record["labels"] and row["gold_label"] == record["gold_label"]
        assert {k: v for k, v in row["components"].items() if v is not None} == record["components"]
        assert row["llm_label"] == (record["llm"] or {}).get("label")


HOSTILE = ["=HYPERLINK(\"http://x\")", "+1+2", "-3", "@SUM(A1)", "\tcmd", "\rcmd", "plain", "a=b"]


def test_csv_cells_that_would_run_as_formulas_are_prefixed_and_jsonl_parquet_stay_byte_exact(published, tmp_path):
    from content.models import ContentItem
    from tests.goldsets.conftest import label_items

    items = label_items(published, [["insult"] * 3] * len(HOSTILE), source="hostile", vendor="=cmd|' /C calc'!A0")
    for item, text in zip(items, HOSTILE, strict=True):  # not frozen yet: the content may still be set
        ContentItem.objects.filter(pk=item.pk).update(parts={"text": text}, external_id=text)
    version = goldset_version_build(version_id=goldset_version_freeze_request(
        name="hostile", policy_version=published, rule=FreezeRule()).pk)

    csv_out = goldset_version_export(version=version, fmt="csv", output=tmp_path / "x.csv")
    rows = list(csv.DictReader(csv_out.path.open(newline="")))
    by_text = {row["part.text"]: row for row in rows}
    assert set(by_text) == {("'" + t if t[0] in "=+-@\t\r" else t) for t in HOSTILE}
    assert all(row["external_id"] == row["part.text"] for row in rows)
    assert all(json.loads(row["labels"])[0]["vendor"] == "=cmd|' /C calc'!A0" for row in rows)  # in JSON: "[" first
    assert "CSV injection" in csv_out.card_path.read_text()

    jsonl = goldset_version_export(version=version, fmt="jsonl", output=tmp_path / "x.jsonl")
    lines = [json.loads(line) for line in jsonl.path.read_text().splitlines()]
    assert sorted(line["components"]["text"] for line in lines) == sorted(HOSTILE)
    parquet = goldset_version_export(version=version, fmt="parquet", output=tmp_path / "x.parquet")
    assert sorted(pq.read_table(parquet.path).column("external_id").to_pylist()) == sorted(HOSTILE)


def test_the_dataset_card_keeps_user_text_inert(published, tmp_path):
    from goldsets.exports import dataset_card, markdown_text
    from goldsets.models import GoldenSet
    from tests.goldsets.conftest import label_items

    label_items(published, [["insult"] * 3] * 3, vendor="<script>alert(1)</script>")
    version = goldset_version_build(version_id=goldset_version_freeze_request(
        name="inert", policy_version=published, rule=FreezeRule(),
        description="# Heading\n<img src=x onerror=alert(1)> [click](javascript:alert(1))").pk)
    card = dataset_card(version)
    assert "<script>" not in card and "<img" not in card and "](javascript" not in card
    assert "&lt;script&gt;alert\\(1\\)&lt;/script&gt;" in card and "\\# Heading" in card
    assert GoldenSet.objects.get(name="inert").description.startswith("# Heading")  # stored as given
    assert markdown_text("a_b*c") == "a\\_b\\*c" and markdown_text("two\nlines") == "two lines"


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_exported_files_get_the_mode_the_umask_gives(frozen, tmp_path, umask):
    import os
    import stat

    previous = os.umask(umask)
    try:
        result = goldset_version_export(version=frozen, fmt="jsonl", output=tmp_path / "out", into_directory=True)
    finally:
        os.umask(previous)
    for path in (result.path, result.manifest_path, result.card_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path
