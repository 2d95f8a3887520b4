"""Policy files: every error names file, line and field; export and import round-trip."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.compiler import ExampleSpec, LabelSpec, PolicySpec, RuleSpec
from policies.policyfile import format_policy_file, parse_policy_file
from touchstone.lines import LineError

EXAMPLES = Path(__file__).resolve().parents[2] / "policies" / "example_policies"

GOOD = """---
slug: demo
title: Demo
labels:
  - key: ok
    name: OK
    definition: Fine.
    violation: false
  - key: bad
    name: Bad
    definition: Not fine.
    violation: true
rules:
  - id: R-1
    label: bad
    text: No bad things.
examples:
  - label: bad
    text: something bad
---
# Demo policy
Body.
"""


def parse_error(text: str) -> LineError:
    with pytest.raises(LineError) as exc:
        parse_policy_file(text, path="demo.md")
    return exc.value


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.md")), ids=lambda p: p.stem)
def test_example_policies_parse_and_round_trip(path: Path) -> None:
    spec = parse_policy_file(path.read_text(), path=str(path))
    assert len(spec.labels) >= 3 and spec.rules and spec.examples
    assert parse_policy_file(format_policy_file(spec), path="again.md") == spec


def test_good_file_parses() -> None:
    spec = parse_policy_file(GOOD, path="demo.md")
    assert spec.slug == "demo" and [lb.key for lb in spec.labels] == ["ok", "bad"]
    assert spec.examples[0].polarity == "positive"
    assert spec.text == "# Demo policy\nBody.\n"


@pytest.mark.parametrize(("mutation", "line", "field", "reason"), [
    (("  - label: bad\n    text: something bad", "  - label: worse\n    text: something bad"),
     18, "examples[0].label", "not a label in the taxonomy"),
    (("  - key: bad\n", "  - key: ok\n"), 9, "labels[1].key", "duplicate label key"),
    (("    violation: true\n", "    violation: maybe\n"), 12, "labels[1].violation", "expected bool"),
    (("    name: Bad\n", ""), 9, "labels[1]", "missing field 'name'"),
    (("    text: No bad things.\n", "    text: No bad things.\n    colour: red\n"), 17,
     "rules[0].colour", "unknown field"),
    (("rules:\n  - id: R-1\n", "rules:\n  - id: R-1\n    label: bad\n    text: x\n  - id: R-1\n"),
     17, "rules[1].id", "used twice"),
    (("    label: bad\n    text: No", "    label: nothing\n    text: No"), 15, "rules[0].label",
     "not a label"),
])
def test_errors_name_file_line_and_field(mutation: tuple[str, str], line: int, field: str, reason: str) -> None:
    old, new = mutation
    assert old in GOOD
    error = parse_error(GOOD.replace(old, new, 1))
    assert (error.path, error.line, error.field) == ("demo.md", line, field)
    assert reason in error.reason
    assert str(error).startswith(f"demo.md:{line}: {field}: ")


def test_invalid_yaml_names_the_line() -> None:
    error = parse_error(GOOD.replace("title: Demo", "title: [unclosed"))
    assert error.line is not None and error.line >= 3 and "invalid YAML" in error.reason


def test_missing_front_matter_and_unclosed_front_matter() -> None:
    assert parse_error("# just markdown\n").line == 1
    assert "not closed" in parse_error("---\nslug: x\n").reason


def test_empty_policy_text_is_rejected() -> None:
    error = parse_error(GOOD.split("# Demo policy")[0])
    assert error.field == "text"


text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=40).filter(
    lambda s: s.strip() == s and s.strip())


@settings(max_examples=50, deadline=None)
@given(title=text, definition=text, rule=text, example=text, explanation=st.one_of(st.just(""), text),
       multiline=st.booleans())
def test_format_then_parse_is_identity(title: str, definition: str, rule: str, example: str,
                                       explanation: str, multiline: bool) -> None:
    if multiline:
        definition = f"{definition}\nsecond line"
    spec = PolicySpec(
        slug="s", title=title, version=0, text="Policy body.\n",
        labels=(LabelSpec("ok", "OK", definition, False), LabelSpec("bad", "Bad", "x", True, True)),
        rules=(RuleSpec("R-1", rule, "bad"), RuleSpec("R-2", "general")),
        examples=(ExampleSpec("bad", example, "negative", explanation),),
    )
    assert parse_policy_file(format_policy_file(spec), path="x.md") == spec


def _alias_bomb(levels: int = 9) -> str:
    """The "billion laughs" of the hardening issue: each level repeats the one above nine times."""
    lines = ["---", 'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels + 1):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]")
    return "\n".join([*lines, "slug: demo", "---", "# body"]) + "\n"


def test_an_alias_bomb_is_refused_at_its_first_anchor_in_well_under_a_second() -> None:
    import time

    started = time.perf_counter()
    error = parse_error(_alias_bomb())
    assert time.perf_counter() - started < 0.5
    assert (error.path, error.line) == ("demo.md", 2) and "anchor &l0" in error.reason
    assert str(error).startswith("demo.md:2: YAML anchor &l0 is not allowed")


def test_a_lone_alias_is_refused_too_with_its_line() -> None:
    text = GOOD.replace("    text: No bad things.", "    text: *nothing")
    error = parse_error(text)
    assert error.line == GOOD.splitlines().index("    text: No bad things.") + 1 and "alias *nothing" in error.reason
