"""``manage.py content import --json``: the import job as one JSON document; bad lines on stderr."""

from __future__ import annotations

import json
from datetime import datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from content.models import ContentImport

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cli_user")]


def test_import_json_prints_the_job(tmp_path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps({"external_id": "1", "components": {"text": "hi"}}) + "\nnot json\n"
                    + json.dumps({"external_id": "2", "components": {"text": "hi"}}) + "\n")
    out, err = StringIO(), StringIO()
    call_command("content", "import", str(path), "--source", "cli", "--json", stdout=out, stderr=err)
    document = json.loads(out.getvalue())
    job = ContentImport.objects.get()
    assert (document["import"], document["source"], document["path"]) == (job.pk, "cli", str(path))
    assert (document["imported"], document["duplicates"], document["rejected"], document["identical_bodies"],
            document["lines_read"], document["status"]) == (2, 0, 1, 1, 3, "finished")
    assert [(e["line"], "malformed JSON" in e["reason"]) for e in document["errors"]] == [(2, True)]
    assert datetime.fromisoformat(document["started_at"]) <= datetime.fromisoformat(document["finished_at"])
    assert f"{path}:2: malformed JSON" in err.getvalue()

    out = StringIO()
    call_command("content", "import", str(path), "--source", "cli", "--json", stdout=out, stderr=StringIO())
    assert json.loads(out.getvalue())["duplicates"] == 2


def test_errors_stay_command_errors(tmp_path) -> None:
    with pytest.raises(CommandError, match="no such file"):
        call_command("content", "import", str(tmp_path / "nope.jsonl"), "--source", "cli", "--json")
