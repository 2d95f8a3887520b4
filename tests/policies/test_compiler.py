"""The pure compiler: determinism, snapshots, and every error naming its field."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.compiler import (
    TEMPLATE_VARIABLES,
    CompileError,
    ExampleSpec,
    LabelSpec,
    ModelSettings,
    PolicySpec,
    RuleSpec,
    TemplateSpec,
    compile_prompt,
    estimate_tokens,
    render_user_message,
)
from policies.policyfile import parse_policy_file

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "policies" / "prompt_templates"
SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
TEMPLATE_KEYS = ("json_classifier", "sectioned_policy", "category_blocks")
SIM = ModelSettings(model="sim-strong")


def template(key: str) -> TemplateSpec:
    return TemplateSpec(key=key, version=1, body=(TEMPLATES / f"{key}.txt").read_text())


@pytest.fixture(scope="module")
def harassment() -> PolicySpec:
    path = REPO / "policies" / "example_policies" / "harassment.md"
    return parse_policy_file(path.read_text(), path=str(path), version=1)


def small_policy(**changes: object) -> PolicySpec:
    base = PolicySpec(
        slug="p", title="P", version=1, text="Be nice.",
        labels=(LabelSpec("ok", "OK", "fine", False), LabelSpec("bad", "Bad", "not fine", True)),
        rules=(RuleSpec("R-1", "no bad", "bad"),),
        examples=(ExampleSpec("bad", "you are bad"),),
    )
    return dataclasses.replace(base, **changes)


def problem_fields(exc: pytest.ExceptionInfo[CompileError]) -> list[str]:
    return [field for field, _ in exc.value.problems]


@pytest.mark.parametrize("key", TEMPLATE_KEYS)
def test_rendered_prompt_matches_reviewed_snapshot(harassment: PolicySpec, key: str) -> None:
    compiled = compile_prompt(harassment, template(key), SIM)
    snapshot = SNAPSHOTS / f"harassment.{key}.txt"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        snapshot.write_text(compiled.system_prompt)
    assert compiled.system_prompt == snapshot.read_text()


@pytest.mark.parametrize("key", TEMPLATE_KEYS)
def test_compiling_twice_gives_the_same_digest_and_text(harassment: PolicySpec, key: str) -> None:
    first, second = compile_prompt(harassment, template(key), SIM), compile_prompt(harassment, template(key), SIM)
    assert first.sha256 == second.sha256
    assert first.system_prompt == second.system_prompt
    assert len(first.sha256) == 64


def test_every_template_uses_only_known_variables_and_shows_the_labels(harassment: PolicySpec) -> None:
    for key in TEMPLATE_KEYS:
        compiled = compile_prompt(harassment, template(key), SIM)
        assert "{{" not in compiled.system_prompt
        for label in harassment.labels:
            assert label.key in compiled.system_prompt


def test_digest_changes_with_settings_template_and_content(harassment: PolicySpec) -> None:
    base = compile_prompt(harassment, template("json_classifier"), SIM).sha256
    assert compile_prompt(harassment, template("json_classifier"),
                          dataclasses.replace(SIM, temperature=0.5)).sha256 != base
    assert compile_prompt(harassment, template("sectioned_policy"), SIM).sha256 != base
    assert compile_prompt(dataclasses.replace(harassment, text="Other text."),
                          template("json_classifier"), SIM).sha256 != base


def test_output_schema_lists_taxonomy_keys_and_rule_ids(harassment: PolicySpec) -> None:
    schema = compile_prompt(harassment, template("json_classifier"), SIM).output_schema
    assert schema["properties"]["label"]["enum"] == [lb.key for lb in harassment.labels]
    assert schema["properties"]["violated_rule_ids"]["items"]["enum"] == [r.rule_id for r in harassment.rules]
    assert schema["properties"]["confidence"] == {"type": "number", "minimum": 0, "maximum": 1}
    assert set(schema["required"]) == {"label", "confidence", "rationale", "violated_rule_ids"}


def test_policy_without_rules_allows_no_rule_ids() -> None:
    schema = compile_prompt(small_policy(rules=()), template("json_classifier"), SIM).output_schema
    assert schema["properties"]["violated_rule_ids"]["maxItems"] == 0


def test_taxonomy_without_labels_is_rejected() -> None:
    with pytest.raises(CompileError) as exc:
        compile_prompt(small_policy(labels=(), examples=(), rules=()), template("json_classifier"), SIM)
    assert problem_fields(exc) == ["labels"]


def test_duplicate_label_key_names_the_second_label() -> None:
    labels = (LabelSpec("ok", "OK", "fine", False), LabelSpec("bad", "Bad", "x", True),
              LabelSpec("bad", "Bad again", "y", True))
    with pytest.raises(CompileError) as exc:
        compile_prompt(small_policy(labels=labels), template("json_classifier"), SIM)
    assert problem_fields(exc) == ["labels[2].key"]
    assert "first at labels[1]" in str(exc.value)


def test_example_with_unknown_label_names_the_example() -> None:
    examples = (ExampleSpec("bad", "x"), ExampleSpec("terrible", "y"))
    with pytest.raises(CompileError) as exc:
        compile_prompt(small_policy(examples=examples), template("json_classifier"), SIM)
    assert problem_fields(exc) == ["examples[1].label"]


def test_rule_id_used_twice_names_the_rule() -> None:
    rules = (RuleSpec("R-1", "a", "bad"), RuleSpec("R-2", "b"), RuleSpec("R-1", "c"))
    with pytest.raises(CompileError) as exc:
        compile_prompt(small_policy(rules=rules), template("json_classifier"), SIM)
    assert problem_fields(exc) == ["rules[2].id"]


def test_unknown_template_variable_names_its_line() -> None:
    body = "Policy: {{ policy_title }}\n\nLabels:\n{{ labels }}\n{{ secret_sauce }}\n"
    with pytest.raises(CompileError) as exc:
        compile_prompt(small_policy(), TemplateSpec("t", 1, body), SIM)
    assert problem_fields(exc) == ["template.body line 5"]
    assert "secret_sauce" in str(exc.value)


def test_prompt_over_the_token_budget_is_rejected() -> None:
    long_text = "word " * 20_000
    with pytest.raises(CompileError) as exc:
        compile_prompt(small_policy(text=long_text), template("json_classifier"),
                       ModelSettings(model="gpt-4", max_output_tokens=1000))
    assert problem_fields(exc) == ["system_prompt"]
    assert "budget of 7192" in str(exc.value)


def test_several_problems_are_reported_together() -> None:
    with pytest.raises(CompileError) as exc:
        compile_prompt(small_policy(examples=(ExampleSpec("nope", "x"),)), template("json_classifier"),
                       ModelSettings(model="m", temperature=3.0))
    assert problem_fields(exc) == ["examples[0].label", "settings.temperature"]


def test_all_violating_taxonomy_is_rejected() -> None:
    with pytest.raises(CompileError) as exc:
        compile_prompt(small_policy(labels=(LabelSpec("bad", "Bad", "x", True),)), template("json_classifier"), SIM)
    assert problem_fields(exc) == ["labels"]


def test_estimate_counts_utf8_bytes_over_four() -> None:
    assert estimate_tokens("abcd") == (1, "estimate:utf8_bytes/4")
    assert estimate_tokens("abcde")[0] == 2
    assert estimate_tokens("é" * 4)[0] == 2  # 8 bytes


def test_user_message_orders_parts_marks_target_and_attaches_images(harassment: PolicySpec) -> None:
    compiled = compile_prompt(harassment, template("json_classifier"), SIM)
    content = render_user_message(compiled.user_message_template,
                                  parts={"response": "R", "query": "Q", "zeta": "Z", "empty": ""},
                                  images=["data:image/png;base64,AAAA"], target="response")
    text = content[0]["text"]
    assert text.index("<query>\nQ") < text.index("<response>\nR") < text.index("<zeta>\nZ")
    assert "<empty>" not in text
    assert "Target: <response>" in text
    assert content[1] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "auto"}}


def test_the_documented_variables_are_exactly_the_context_keys(harassment: PolicySpec) -> None:
    from policies.compiler import template_context

    assert set(template_context(harassment)) == set(TEMPLATE_VARIABLES)


label_keys = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)


@settings(max_examples=60, deadline=None)
@given(keys=st.lists(label_keys, min_size=1, max_size=6, unique=True), seed=st.integers(0, 2**31),
       temperature=st.floats(0, 2, allow_nan=False))
def test_compile_is_a_deterministic_function_of_its_inputs(keys: list[str], seed: int, temperature: float) -> None:
    labels = (LabelSpec("safe_outcome", "Safe", "fine", False),
              *(LabelSpec(k + "_v", k, f"definition of {k}", True) for k in keys))
    policy = small_policy(labels=labels, rules=(), examples=())
    model = ModelSettings(model="sim-x", temperature=temperature, seed=seed)
    a = compile_prompt(policy, template("sectioned_policy"), model)
    b = compile_prompt(dataclasses.replace(policy), template("sectioned_policy"), dataclasses.replace(model))
    assert a.sha256 == b.sha256 and a.system_prompt == b.system_prompt
    assert a.output_schema["properties"]["label"]["enum"] == [lb.key for lb in labels]
    swapped = dataclasses.replace(policy, labels=(labels[0], *reversed(labels[1:])))
    if len(keys) > 1:
        assert compile_prompt(swapped, template("sectioned_policy"), model).sha256 != a.sha256
