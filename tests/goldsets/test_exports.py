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
    assert "ann0" in path.read_text()
    del nobody


def test_a_tampered_version_refuses_to_export_and_writes_nothing(frozen, tmp_path):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE goldsets_goldenitem SET labels = '[]' WHERE position = 3")
    out = tmp_path / "x.jsonl"
    with pytest.raises(CommandError, match="digest"):
        call_command("goldset", "export", "gs", "--format", "jsonl", "--output", str(out), stdout=StringIO())
    assert list(tmp_path.iterdir()) == []


def test_export_imported_into_an_empty_database_freezes_to_the_same_digest(published, tmp_path):
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

    with connection.cursor() as cursor:  # empty the database of everything the export holds
        for table in ("goldsets_goldenitem", "goldsets_goldensetversion", "goldsets_goldenset_owners",
                      "goldsets_goldenset", "review_humanlabel", "review_labeler", "review_vendor",
                      "content_contentitem"):
            cursor.execute(f"DELETE FROM {table}")

    call_command("content", "import", str(export), "--source", "rt", **quiet)
    call_command("labels", "import", str(export), "--policy", "harassment", "--source", "rt", **quiet)
    out = StringIO()
    call_command("goldset", "freeze", "rt", "--policy", "harassment", stdout=out)
    assert f"digest {digest}" in out.getvalue()
