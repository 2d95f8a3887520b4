"""`manage.py signal`: create, version, import, list, show (--json), and who may do what."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from evaluation.models import SignalScore

pytestmark = pytest.mark.django_db


def _run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("signal", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_ops_create_version_and_import_and_everyone_with_the_command_reads(tmp_path, published, items, ops):
    _run("create", "clf", "--policy", "harassment", "--kind", "production_classifier", "--output", "score",
         "--score-label", "violating", "--user", "ops")
    out, _ = _run("version", "clf", "--commit", "c0ffee", "--json", "--user", "ops")
    assert json.loads(out)["version"] == 1
    path = tmp_path / "s.jsonl"
    path.write_text('{"source": "t", "external_id": "i0", "score": 0.7}\n'
                    '{"source": "t", "external_id": "i1", "score": 3}\n'
                    '{"source": "t", "external_id": "gone", "score": 0.1}\n')
    out, err = _run("import", str(path), "--signal", "clf@1", "--user", "ops")
    assert f"{path}:2: score: 3 is outside [0, 1]" in err
    assert "imported 1 into clf@1, duplicate 0, rejected 1, unknown items 1" in out
    assert "t:gone (line 3)" in out
    listed = json.loads(_run("list", "--json")[0])
    assert listed == [{"signal": "clf", "kind": "production_classifier", "policy": "harassment",
                       "output_type": "score", "score_label": "violating", "versions": 1}]
    shown = json.loads(_run("show", "clf@1", "--json")[0])
    assert (shown["rows"], shown["with_score"], shown["commit"]) == (1, 1, "c0ffee")
    assert "v1: 1 scores" in _run("show", "clf")[0]


def test_strict_import_fails_with_the_line_and_keeps_nothing(tmp_path, score_version, items, ops):
    path = tmp_path / "s.csv"
    path.write_text("source,external_id,score\nt,i0,0.5\nt,i1,-1\n")
    with pytest.raises(CommandError, match=r"s.csv:3: score: -1 is outside \[0, 1\]"):
        _run("import", str(path), "--signal", "clf@1", "--strict", "--user", "ops")
    assert not SignalScore.objects.exists()


def test_pipelines_cannot_create_or_import_and_a_user_is_required(tmp_path, score_version, items, pipeline):
    path = tmp_path / "s.jsonl"
    path.write_text('{"source": "t", "external_id": "i0", "score": 0.7}\n')
    with pytest.raises(CommandError, match="evaluation.add_signalscore"):
        _run("import", str(path), "--signal", "clf@1", "--user", "pipe")
    with pytest.raises(CommandError, match="evaluation.add_signal"):
        _run("create", "x", "--policy", "harassment", "--kind", "rule", "--output", "label", "--user", "pipe")
    with pytest.raises(CommandError, match="--user"):
        _run("import", str(path), "--signal", "clf@1")
    with pytest.raises(CommandError, match="name the version"):
        _run("import", str(path), "--signal", "clf", "--user", "pipe")
    assert not SignalScore.objects.exists()
