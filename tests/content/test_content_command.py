"""``manage.py content import``: counts on stdout, each bad line on stderr, non-zero on strict errors."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from content.models import ContentItem

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cli_user")]


def test_import_prints_counts_and_bad_lines(tmp_path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps({"external_id": "1", "components": {"text": "hi"}}) + "\nnot json\n")
    out, err = StringIO(), StringIO()
    call_command("content", "import", str(path), "--source", "cli", stdout=out, stderr=err)
    assert "imported 1, duplicate 0, rejected 1" in out.getvalue()
    assert f"{path}:2: malformed JSON" in err.getvalue()
    call_command("content", "import", str(path), "--source", "cli", stdout=out, stderr=err)
    assert "imported 0, duplicate 1, rejected 1" in out.getvalue()


def test_strict_failure_exits_non_zero_and_keeps_nothing(tmp_path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps({"external_id": "1", "components": {"text": "hi"}}) + "\n"
                    + json.dumps({"external_id": "2", "components": {"text": 5}}) + "\n")
    with pytest.raises(CommandError, match=r"items.jsonl:2: components.text: expected text, got int"):
        call_command("content", "import", str(path), "--source", "cli", "--strict", stdout=StringIO())
    assert not ContentItem.objects.exists()


def test_missing_file(tmp_path) -> None:
    with pytest.raises(CommandError, match="no such file"):
        call_command("content", "import", str(tmp_path / "nope.jsonl"), "--source", "cli")
