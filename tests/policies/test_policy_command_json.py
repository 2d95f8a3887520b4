"""``manage.py policy … --json``: one JSON document on stdout per subcommand, with the facts the text shows."""

from __future__ import annotations

import json
from datetime import datetime
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from policies.models import PromptVersion

pytestmark = pytest.mark.django_db
EXAMPLES = Path(__file__).resolve().parents[2] / "policies" / "example_policies"


def run_json(*args: str) -> dict:
    out = StringIO()
    call_command("policy", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_every_subcommand_prints_one_json_document(author, approver, tmp_path: Path) -> None:
    imported = run_json("import", str(EXAMPLES / "misinformation.md"), str(EXAMPLES / "harassment.md"),
                        "--user", "author")["imported"]
    assert [(r["policy_version"], r["created"], r["status"]) for r in imported] == [
        ("misinformation@1", True, "draft"), ("harassment@1", True, "draft")]
    assert imported[0]["path"].endswith("misinformation.md") and datetime.fromisoformat(imported[0]["created_at"])
    again = run_json("import", str(EXAMPLES / "misinformation.md"), "--user", "author")["imported"]
    assert again[0]["created"] is False and again[0]["version"] == 1

    submitted = run_json("submit", "misinformation", "--user", "author")
    assert (submitted["policy_version"], submitted["status"]) == ("misinformation@1", "in_review")
    assert datetime.fromisoformat(submitted["submitted_at"]) and submitted["published_at"] is None
    published = run_json("publish", "misinformation@1", "--user", "approver")
    assert published["status"] == "published" and datetime.fromisoformat(published["published_at"])

    listed = {p["slug"]: p for p in run_json("list")["policies"]}
    assert listed["misinformation"]["published"] == 1 and listed["harassment"]["published"] is None
    assert listed["harassment"]["versions"] == 1 and listed["harassment"]["title"]

    assert run_json("prompts", "misinformation")["prompts"] == []
    compiled = run_json("compile", "misinformation", "--template", "category_blocks", "--user", "author")
    prompt = PromptVersion.objects.get()
    assert compiled["policy_version"] == "misinformation@1"
    assert [(p["sha256"], p["created"], p["model"]) for p in compiled["prompts"]] == [(prompt.sha256, True,
                                                                                       "sim-strong")]
    assert run_json("compile", "misinformation", "--template", "category_blocks",
                    "--user", "author")["prompts"][0]["created"] is False
    [listed_prompt] = run_json("prompts", "misinformation")["prompts"]
    assert listed_prompt["sha256"] == prompt.sha256 and listed_prompt["token_count"] == prompt.token_count

    exported = run_json("export", "misinformation")
    assert exported["policy_version"] == "misinformation@1" and exported["text"].startswith("---")
    target = tmp_path / "m.md"
    written = run_json("export", "misinformation", "--output", str(target))
    assert written["output"] == str(target) and target.read_text() == exported["text"] and "text" not in written


def test_errors_stay_command_errors_with_json(author) -> None:
    with pytest.raises(CommandError, match="No policy version misinformation@7"):
        run_json("export", "misinformation@7")
    with pytest.raises(CommandError, match="--user"):
        run_json("import", str(EXAMPLES / "harassment.md"), "--user", "nobody")
