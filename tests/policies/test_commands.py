"""``manage.py policy``: clear errors with file, line and field; non-zero exits; round trip."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from policies.models import PolicyVersion, PromptVersion

pytestmark = pytest.mark.django_db
EXAMPLES = Path(__file__).resolve().parents[2] / "policies" / "example_policies"


def run(*args: str) -> str:
    out = StringIO()
    call_command("policy", *args, stdout=out)
    return out.getvalue()


def test_import_export_round_trip(author, tmp_path: Path) -> None:
    output = run("import", *map(str, sorted(EXAMPLES.glob("*.md"))), "--user", "author")
    assert output.count("created draft") == 4
    exported = tmp_path / "harassment.md"
    run("export", "harassment", "--output", str(exported))
    assert "unchanged" in run("import", str(exported), "--user", "author")
    assert PolicyVersion.objects.count() == 4


def test_import_error_names_file_line_field_and_writes_nothing(author, tmp_path: Path) -> None:
    bad = tmp_path / "bad.md"
    original = (EXAMPLES / "self-harm.md").read_text()
    bad.write_text(original.replace("    label: instructions\n", "    label: how_to\n", 1))
    with pytest.raises(CommandError) as exc:
        run("import", str(bad), "--user", "author")
    message = str(exc.value)
    assert message.startswith(f"{bad}:") and "rules[2].label: 'how_to' is not a label" in message
    line = int(message.split(":")[1])
    assert bad.read_text().splitlines()[line - 1].strip() == "label: how_to"
    assert not PolicyVersion.objects.exists()


def test_missing_file_and_missing_user_are_clear(author, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="cannot read"):
        run("import", str(tmp_path / "nope.md"), "--user", "author")
    with pytest.raises(CommandError, match="--user"):
        run("import", str(EXAMPLES / "harassment.md"), "--user", "nobody")


def test_compile_submit_publish_from_the_cli(author, approver) -> None:
    run("import", str(EXAMPLES / "misinformation.md"), "--user", "author")
    assert "in_review" in run("submit", "misinformation", "--user", "author")
    with pytest.raises(CommandError, match="may not approve"):
        call_command("policy", "publish", "misinformation", "--user", "author")
    assert "published" in run("publish", "misinformation@1", "--user", "approver")
    assert run("compile", "misinformation", "--template", "category_blocks", "--user", "author").startswith("compiled")
    assert run("compile", "misinformation", "--template", "category_blocks", "--user", "author").startswith("exists")
    assert PromptVersion.objects.count() == 1
    with pytest.raises(CommandError, match="No policy version misinformation@7"):
        run("export", "misinformation@7")


def test_prompts_lists_a_versions_prompt_hashes(author, approver) -> None:
    run("import", str(EXAMPLES / "misinformation.md"), "--user", "author")
    assert "no prompt versions yet" in run("prompts", "misinformation")
    run("compile", "misinformation", "--template", "category_blocks", "--user", "author")
    [line] = run("prompts", "misinformation@1").splitlines()
    prompt = PromptVersion.objects.get()
    assert line.startswith(f"{prompt.sha256}  misinformation@1  ") and "model=sim-strong" in line
