"""``labels import``: located errors, duplicates, atomic batches, golden-export lines."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from content.models import ContentItem
from review.models import HumanLabel, Labeler, LabelImport

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cli_user")]


@pytest.fixture
def items():
    return ContentItem.objects.bulk_create([
        ContentItem(source="s", external_id=f"i{n}", parts={"text": f"t{n}"}, content_sha256=f"{n:064d}")
        for n in range(3)])


def write(tmp_path, rows, name="labels.jsonl"):
    path = tmp_path / name
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def label(external_id="i0", labeler="ann1", value="not_harassment", **extra):
    return {"external_id": external_id, "labeler": labeler, "vendor": "acme", "label": value, **extra}


def test_import_reports_each_bad_line_and_keeps_the_good_ones(tmp_path, published, items):
    path = write(tmp_path, [
        label(labeled_at="2024-05-01T10:00:00Z"),
        label(labeler="ann2", value="insult"),
        "{broken",
        label(external_id="missing"),
        label(labeler="ann3", value="spam"),
        label(),  # duplicate of line 1
        {"external_id": "i1", "labeler": "ann1", "label": "not_harassment"},
        label(labeler="ann4", labeled_at="2024-05-01 10:00"),
    ])
    out, err = StringIO(), StringIO()
    call_command("labels", "import", str(path), "--policy", "harassment", stdout=out, stderr=err)
    assert "imported 2, duplicate 1, rejected 5" in out.getvalue()
    lines = err.getvalue().splitlines()
    assert lines[0].startswith(f"{path}:3: malformed JSON")
    assert f"{path}:4: external_id: no item 'missing'" in lines[1]
    assert f"{path}:5: label: 'spam' is not in the taxonomy of harassment@1" in lines[2]
    assert f"{path}:6: labeler: duplicate: 'ann1' (acme) already labelled 'i0'" in lines[3]
    assert f"{path}:7: vendor: missing" in lines[4]
    assert f"{path}:8: labeled_at: '2024-05-01 10:00' has no time zone" in lines[5]
    stored = HumanLabel.objects.get(labeler__external_id="ann1")
    assert stored.labeled_at.isoformat() == "2024-05-01T10:00:00+00:00" and stored.source == "import"
    call_command("labels", "import", str(path), "--policy", "harassment@1", stdout=out, stderr=StringIO())
    assert "imported 0, duplicate 3" in out.getvalue()
    assert HumanLabel.objects.count() == 2


def test_strict_rolls_back_everything(tmp_path, published, items):
    path = write(tmp_path, [label(), label(labeler="ann2"), label(external_id="i9")])
    with pytest.raises(CommandError, match=r"labels.jsonl:3: external_id: no item 'i9'"):
        call_command("labels", "import", str(path), "--policy", "harassment", "--strict", "--batch-size", "1",
                     stdout=StringIO())
    assert not HumanLabel.objects.exists() and not Labeler.objects.exists()
    assert LabelImport.objects.get().status == "failed"


def test_ambiguous_external_id_needs_a_source(tmp_path, published, items):
    ContentItem.objects.create(source="other", external_id="i0", parts={"text": "x"}, content_sha256="f" * 64)
    path = write(tmp_path, [label()])
    err = StringIO()
    call_command("labels", "import", str(path), "--policy", "harassment", stdout=StringIO(), stderr=err)
    assert "exists in several sources (other, s): pass --source" in err.getvalue()
    call_command("labels", "import", str(path), "--policy", "harassment", "--source", "s", stdout=StringIO())
    assert HumanLabel.objects.get().item.source == "s"


def test_golden_export_lines_yield_every_label(tmp_path, published, items):
    line = {"external_id": "i2", "source": "s", "components": {"text": "t2"}, "gold_label": "insult",
            "decided_by": "majority", "labels": [
                {"labeler": "L-1", "vendor": "acme", "label": "insult", "labeled_at": "2024-01-01T00:00:00+00:00"},
                {"labeler": "L-2", "vendor": "acme", "label": "not_harassment"},
                {"labeler": "L-3", "vendor": "experts", "label": "insult", "role": "adjudication"}]}
    out = StringIO()
    call_command("labels", "import", str(write(tmp_path, [line])), "--policy", "harassment", stdout=out)
    assert "imported 3, duplicate 0, rejected 0" in out.getvalue()
    assert LabelImport.objects.get().lines_read == 1
    assert HumanLabel.objects.get(role="adjudication").labeler.vendor.name == "experts"


def test_draft_policy_and_unknown_policy_are_refused(tmp_path, draft, items):
    path = write(tmp_path, [label()])
    with pytest.raises(CommandError, match="no published version"):
        call_command("labels", "import", str(path), "--policy", "harassment")
    with pytest.raises(CommandError, match="labels need a published version"):
        call_command("labels", "import", str(path), "--policy", "harassment@1")
    with pytest.raises(CommandError, match="No policy 'nope'"):
        call_command("labels", "import", str(path), "--policy", "nope")


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1999-12-31T23:59:59Z"])
def test_label_times_outside_the_believable_window_are_refused_at_their_line(tmp_path, published, items, when):
    path = write(tmp_path, [label(labeled_at="2024-05-01T10:00:00Z"), label(labeler="ann2", labeled_at=when)])
    err = StringIO()
    call_command("labels", "import", str(path), "--policy", "harassment", stdout=StringIO(), stderr=err)
    assert f"{path}:2: labeled_at: " in err.getvalue() and "outside the accepted window 2000-01-01" in err.getvalue()
    assert HumanLabel.objects.count() == 1


def test_the_window_tolerates_a_day_of_clock_drift_and_no_more() -> None:
    from datetime import UTC, datetime, timedelta

    from touchstone.timewindow import label_time_problem

    now = datetime(2026, 6, 1, tzinfo=UTC)
    assert label_time_problem(now + timedelta(hours=23), now=now) is None
    assert "outside" in label_time_problem(now + timedelta(days=2), now=now)
    assert label_time_problem(datetime(2000, 1, 1, tzinfo=UTC), now=now) is None
    assert "time zone" in label_time_problem(datetime(2024, 1, 1), now=now)
