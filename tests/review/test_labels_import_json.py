"""``labels import --json``: the import job's counters and its first rejected lines, as JSON
(and nothing else on stdout), for a clean import, a partly bad one and a rerun."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from review.models import LabelImport
from tests.review.services.test_human_labels import items as _items
from tests.review.services.test_human_labels import label, write

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cli_user", "published", "items")]
items = _items  # the three items s:i0..s:i2 (fixture)


def _run(path, *args) -> tuple[dict, str]:
    out, err = StringIO(), StringIO()
    call_command("labels", "import", str(path), "--policy", "harassment", "--json", *args, stdout=out, stderr=err)
    return json.loads(out.getvalue()), err.getvalue()


def test_json_gives_the_counters_and_the_first_errors(tmp_path):
    path = write(tmp_path, [label(), label(labeler="ann2", value="insult"), "{broken", label(external_id="missing"),
                            label(labeler="ann3", value="spam"), label()])
    doc, err = _run(path)
    job = LabelImport.objects.get()
    assert doc == {"import": job.pk, "policy_version": "harassment@1", "path": str(path), "strict": False,
                   "status": "finished", "lines_read": 6, "imported": 2, "duplicates": 1, "rejected": 3,
                   "errors": job.errors}
    assert [(e["line"], e["field"]) for e in doc["errors"]] == [(3, None), (4, "external_id"), (5, "label"),
                                                                 (6, "labeler")]
    assert "no item 'missing'" in doc["errors"][1]["reason"]
    assert f"{path}:3: malformed JSON" in err  # the located lines still go to stderr

    again, _ = _run(path, "--source", "s")
    assert again["imported"] == 0 and again["duplicates"] == 3 and again["import"] == job.pk + 1


def test_without_json_the_text_line_is_unchanged(tmp_path):
    out = StringIO()
    call_command("labels", "import", str(write(tmp_path, [label()])), "--policy", "harassment", stdout=out)
    assert "imported 1, duplicate 0, rejected 0 for harassment@1" in out.getvalue()
    with pytest.raises(json.JSONDecodeError):
        json.loads(out.getvalue())
