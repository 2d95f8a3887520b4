"""Compile a policy version and a prompt template into an LLM prompt: pure, no Django.

Input conventions
-----------------
- ``PolicySpec`` carries the policy version: slug, title, version number, Markdown text and
  a label taxonomy (labels, rules, examples). Label keys are lower-case identifiers.
- ``TemplateSpec`` carries a template version. Its body may only use the variables in
  ``TEMPLATE_VARIABLES`` as ``{{ name }}``; anything else is an error naming the line.
- ``ModelSettings`` carries the model and its sampling settings.

``compile_prompt`` returns a ``CompiledPrompt`` whose ``sha256`` is taken over a canonical
JSON serialization (sorted keys, no whitespace, UTF-8) of everything that determines what
the model sees, so the same inputs always give the same digest. All problems are collected
and raised together as ``CompileError``, each naming its field.

Token counts come from a caller-supplied counter (``tiktoken`` where the model's encoding
is available offline); ``estimate_tokens`` is the documented fallback: one token per four
UTF-8 bytes, rounded up, which over-counts English slightly and so errs on the safe side
for budget checks.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

COMPILER_VERSION = 1

LABEL_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
RULE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
VARIABLE_RE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
REASONING_EFFORTS = ("minimal", "low", "medium", "high")
POLARITIES = ("positive", "negative")

TEMPLATE_VARIABLES: dict[str, str] = {
    "policy_slug": "the policy's slug",
    "policy_title": "the policy's title",
    "policy_version": "the policy version number",
    "policy_text": "the policy text (Markdown), as written",
    "labels": "every label: key, name, whether it is a violation, definition",
    "label_keys": "the label keys, comma-separated, in taxonomy order",
    "violating_labels": "the labels that count as violations, with definitions",
    "safe_labels": "the labels that do not count as violations, with definitions",
    "rules": "every rule as '[RULE-ID] text', grouped under its label where it has one",
    "examples": "every example with its label and explanation",
    "positive_examples": "examples that are instances of their label",
    "negative_examples": "near misses: examples that are not instances of their label",
    "category_blocks": "Llama-Guard-style blocks: one numbered category per violating label",
    "output_instructions": "how to answer: the JSON object, its fields and allowed values",
}

# Context windows of models whose size is public; others fall back to the default or to
# an explicit ``context_window`` in the settings.
MODEL_CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-4o": 128_000, "gpt-4o-mini": 128_000, "gpt-4.1": 1_047_576,
    "gpt-4.1-mini": 1_047_576, "gpt-4.1-nano": 1_047_576, "gpt-5": 400_000,
    "gpt-5-mini": 400_000, "gpt-5-nano": 400_000, "o3": 200_000, "o4-mini": 200_000,
    "gpt-3.5-turbo": 16_385, "gpt-4": 8_192, "gpt-oss-20b": 131_072, "gpt-oss-120b": 131_072,
}
DEFAULT_CONTEXT_WINDOW = 8_192
SIMULATOR_CONTEXT_WINDOW = 32_768

# Item parts are shown in this order when present; any other part follows alphabetically.
PART_ORDER = ("context", "prev_agent", "prev_user", "agent", "query", "prompt", "user",
              "response", "text")


class CompileError(ValueError):
    """One or more problems, each a (field, message) pair."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{f}: {m}" for f, m in self.problems))


@dataclass(frozen=True)
class LabelSpec:
    key: str
    name: str
    definition: str
    is_violation: bool
    always_human_review: bool = False


@dataclass(frozen=True)
class RuleSpec:
    rule_id: str
    text: str
    label_key: str | None = None


@dataclass(frozen=True)
class ExampleSpec:
    label_key: str
    text: str
    polarity: str = "positive"
    explanation: str = ""


@dataclass(frozen=True)
class PolicySpec:
    slug: str
    title: str
    version: int
    text: str
    labels: tuple[LabelSpec, ...] = ()
    rules: tuple[RuleSpec, ...] = ()
    examples: tuple[ExampleSpec, ...] = ()
    # The labels, in their order, form an ordinal scale (e.g. severity): agreement is then also
    # measured with ordinal Krippendorff's alpha. It does not change the prompt.
    ordered_labels: bool = False
    # Reviewers see images blurred until they reveal them. It does not change the prompt.
    sensitive_images: bool = False


@dataclass(frozen=True)
class TemplateSpec:
    key: str
    version: int
    body: str


@dataclass(frozen=True)
class ModelSettings:
    model: str
    temperature: float = 0.0
    max_output_tokens: int = 512
    reasoning_effort: str | None = None
    seed: int | None = None
    context_window: int | None = None


@dataclass(frozen=True)
class CompiledPrompt:
    system_prompt: str
    user_message_template: dict[str, Any]
    output_schema: dict[str, Any]
    token_count: int
    token_count_method: str
    token_budget: int
    sha256: str
    canonical: dict[str, Any] = field(repr=False)


TokenCounter = Callable[[str], tuple[int, str]]


def estimate_tokens(text: str) -> tuple[int, str]:
    return math.ceil(len(text.encode("utf-8")) / 4), "estimate:utf8_bytes/4"


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_hex(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


def policy_spec_digest(policy: PolicySpec) -> str:
    """Digest of a policy version's content (not its number): equal content, equal digest."""
    content = asdict(policy)
    content.pop("version")
    for flag in ("ordered_labels", "sensitive_images"):
        if not content[flag]:  # absent before the field existed: keep those digests
            content.pop(flag)
    return sha256_hex(content)


# --- validation ----------------------------------------------------------------------------

def validate_policy(policy: PolicySpec) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if not policy.labels:
        problems.append(("labels", "the taxonomy has no labels"))
    seen_keys: dict[str, int] = {}
    for index, label in enumerate(policy.labels):
        where = f"labels[{index}]"
        if not LABEL_KEY_RE.match(label.key):
            problems.append((f"{where}.key", f"{label.key!r} is not a lower-case identifier"))
        if label.key in seen_keys:
            problems.append((f"{where}.key",
                             f"duplicate label key {label.key!r} (first at labels[{seen_keys[label.key]}])"))
        else:
            seen_keys[label.key] = index
        if not label.name.strip():
            problems.append((f"{where}.name", "is empty"))
        if not label.definition.strip():
            problems.append((f"{where}.definition", "is empty"))
    if policy.labels and all(label.is_violation for label in policy.labels):
        problems.append(("labels", "every label is a violation: add the non-violating outcome"))
    seen_rules: dict[str, int] = {}
    for index, rule in enumerate(policy.rules):
        where = f"rules[{index}]"
        if not RULE_ID_RE.match(rule.rule_id):
            problems.append((f"{where}.id", f"{rule.rule_id!r} is not a valid rule id"))
        if rule.rule_id in seen_rules:
            problems.append((f"{where}.id",
                             f"rule id {rule.rule_id!r} used twice (first at rules[{seen_rules[rule.rule_id]}])"))
        else:
            seen_rules[rule.rule_id] = index
        if rule.label_key is not None and rule.label_key not in seen_keys:
            problems.append((f"{where}.label", f"{rule.label_key!r} is not a label in the taxonomy"))
        if not rule.text.strip():
            problems.append((f"{where}.text", "is empty"))
    for index, example in enumerate(policy.examples):
        where = f"examples[{index}]"
        if example.label_key not in seen_keys:
            problems.append((f"{where}.label",
                             f"{example.label_key!r} is not a label in the taxonomy"))
        if example.polarity not in POLARITIES:
            problems.append((f"{where}.polarity", f"{example.polarity!r}: use positive or negative"))
        if not example.text.strip():
            problems.append((f"{where}.text", "is empty"))
    return problems


def validate_settings(settings: ModelSettings) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if not settings.model.strip():
        problems.append(("settings.model", "is empty"))
    if not 0.0 <= settings.temperature <= 2.0:
        problems.append(("settings.temperature", f"{settings.temperature} is outside 0..2"))
    if settings.max_output_tokens < 1:
        problems.append(("settings.max_output_tokens", "must be at least 1"))
    if settings.reasoning_effort is not None and settings.reasoning_effort not in REASONING_EFFORTS:
        problems.append(("settings.reasoning_effort",
                         f"{settings.reasoning_effort!r}: use one of {', '.join(REASONING_EFFORTS)}"))
    if settings.context_window is not None and settings.context_window < 1:
        problems.append(("settings.context_window", "must be positive"))
    return problems


def template_variables_used(body: str) -> list[tuple[int, str]]:
    """(line, name) for every ``{{ ... }}`` in ``body``, 1-based lines."""
    found = []
    for match in VARIABLE_RE.finditer(body):
        line = body.count("\n", 0, match.start()) + 1
        found.append((line, match.group(1)))
    return found


def validate_template(template: TemplateSpec) -> list[tuple[str, str]]:
    problems = []
    for line, name in template_variables_used(template.body):
        if name not in TEMPLATE_VARIABLES:
            problems.append((f"template.body line {line}",
                             f"unknown variable {{{{ {name} }}}}; known: {', '.join(TEMPLATE_VARIABLES)}"))
    leftover = VARIABLE_RE.sub("", template.body)
    for marker in ("{{", "}}"):
        if marker in leftover:
            line = leftover[: leftover.index(marker)].count("\n") + 1
            problems.append((f"template.body line {line}", f"unbalanced {marker!r}"))
    return problems


# --- rendering -------------------------------------------------------------------------------

def _label_line(label: LabelSpec) -> str:
    kind = "violation" if label.is_violation else "not a violation"
    return f"- `{label.key}` — {label.name} ({kind}): {label.definition.strip()}"


def _rules_block(policy: PolicySpec) -> str:
    if not policy.rules:
        return "(no numbered rules)"
    names = {label.key: label.name for label in policy.labels}
    lines: list[str] = []
    groups: dict[str | None, list[RuleSpec]] = {}
    for rule in policy.rules:
        groups.setdefault(rule.label_key, []).append(rule)
    for label_key, rules in groups.items():
        if label_key is not None:
            lines.append(f"{names[label_key]} (`{label_key}`):")
        elif len(groups) > 1:
            lines.append("General:")
        lines.extend(f"- [{rule.rule_id}] {rule.text.strip()}" for rule in rules)
    return "\n".join(lines)


def _example_line(number: int, example: ExampleSpec) -> str:
    verdict = ("is" if example.polarity == "positive" else "is NOT")
    text = " ".join(example.text.split())
    line = f"{number}. Content: \"{text}\"\n   This {verdict} `{example.label_key}`."
    if example.explanation.strip():
        line += f" Why: {' '.join(example.explanation.split())}"
    return line


def _examples_block(examples: Sequence[ExampleSpec]) -> str:
    if not examples:
        return "(no examples)"
    return "\n".join(_example_line(n, ex) for n, ex in enumerate(examples, start=1))


def _category_blocks(policy: PolicySpec) -> str:
    blocks = []
    for number, label in enumerate((lb for lb in policy.labels if lb.is_violation), start=1):
        rules = [r for r in policy.rules if r.label_key == label.key]
        lines = [f"S{number}: {label.name} (`{label.key}`).", label.definition.strip()]
        if rules:
            lines.append("Content in this category includes:")
            lines.extend(f"- [{r.rule_id}] {r.text.strip()}" for r in rules)
        blocks.append("\n".join(lines))
    return "<BEGIN UNSAFE CONTENT CATEGORIES>\n" + "\n\n".join(blocks) + \
        "\n<END UNSAFE CONTENT CATEGORIES>"


def _output_instructions(policy: PolicySpec) -> str:
    keys = ", ".join(f'"{label.key}"' for label in policy.labels)
    rule_ids = ", ".join(f'"{rule.rule_id}"' for rule in policy.rules) or "none defined"
    return (
        "Answer with one JSON object and nothing else, with exactly these fields:\n"
        f"- \"label\": one of {keys}\n"
        "- \"confidence\": a number from 0 to 1, your probability that the label is right\n"
        "- \"rationale\": one or two sentences citing the policy\n"
        f"- \"violated_rule_ids\": the ids of the rules the content breaks ({rule_ids}); "
        "an empty list when none"
    )


def template_context(policy: PolicySpec) -> dict[str, str]:
    """The value of every template variable for ``policy``."""
    violating = [lb for lb in policy.labels if lb.is_violation]
    safe = [lb for lb in policy.labels if not lb.is_violation]
    return {
        "policy_slug": policy.slug,
        "policy_title": policy.title,
        "policy_version": str(policy.version),
        "policy_text": policy.text.strip(),
        "labels": "\n".join(_label_line(lb) for lb in policy.labels),
        "label_keys": ", ".join(lb.key for lb in policy.labels),
        "violating_labels": "\n".join(_label_line(lb) for lb in violating) or "(none)",
        "safe_labels": "\n".join(_label_line(lb) for lb in safe) or "(none)",
        "rules": _rules_block(policy),
        "examples": _examples_block(policy.examples),
        "positive_examples": _examples_block([e for e in policy.examples if e.polarity == "positive"]),
        "negative_examples": _examples_block([e for e in policy.examples if e.polarity == "negative"]),
        "category_blocks": _category_blocks(policy),
        "output_instructions": _output_instructions(policy),
    }


def render_template(body: str, context: Mapping[str, str]) -> str:
    return VARIABLE_RE.sub(lambda m: context[m.group(1)], body).strip() + "\n"


def output_schema(policy: PolicySpec) -> dict[str, Any]:
    """JSON Schema (OpenAI structured-output compatible) of one judgement."""
    rule_items: dict[str, Any] = {"type": "string"}
    if policy.rules:
        rule_items["enum"] = [rule.rule_id for rule in policy.rules]
    rule_ids: dict[str, Any] = {"type": "array", "items": rule_items}
    if not policy.rules:
        rule_ids["maxItems"] = 0
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["label", "confidence", "rationale", "violated_rule_ids"],
        "properties": {
            "label": {"type": "string", "enum": [label.key for label in policy.labels]},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "rationale": {"type": "string"},
            "violated_rule_ids": rule_ids,
        },
    }


def user_message_template(policy: PolicySpec) -> dict[str, Any]:
    """How an item becomes the user message; see ``render_user_message``."""
    return {
        "version": 1,
        "preamble": f"Classify the content below under the policy \"{policy.title}\".",
        "target_line": "Judge only the part marked as the target; the other parts are context.",
        "part_order": list(PART_ORDER),
        "part_format": "<{name}>\n{text}\n</{name}>",
        "image_detail": "auto",
    }


def render_user_message(template: Mapping[str, Any], *, parts: Mapping[str, str],
                        images: Sequence[str] = (), target: str | None = None) -> list[dict[str, Any]]:
    """OpenAI chat content parts for one item: a text part, then one part per image URL.

    ``parts`` maps part names (``query``, ``response``…) to text; empty parts are left out.
    ``target`` names the part to judge; without it the whole item is judged.
    """
    order = list(template["part_order"])
    names = [n for n in order if parts.get(n)] + sorted(n for n in parts if n not in order and parts[n])
    lines = [str(template["preamble"])]
    if target is not None and len(names) > 1:
        lines.append(f"{template['target_line']} Target: <{target}>.")
    for name in names:
        lines.append(str(template["part_format"]).format(name=name, text=parts[name].strip()))
    if images:
        lines.append(f"The item also has {len(images)} image(s), attached below.")
    content: list[dict[str, Any]] = [{"type": "text", "text": "\n\n".join(lines)}]
    content.extend({"type": "image_url", "image_url": {"url": url, "detail": template["image_detail"]}}
                   for url in images)
    return content


def context_window_for(settings: ModelSettings) -> int:
    if settings.context_window is not None:
        return settings.context_window
    if settings.model.startswith("sim-"):
        return SIMULATOR_CONTEXT_WINDOW
    return MODEL_CONTEXT_WINDOWS.get(settings.model, DEFAULT_CONTEXT_WINDOW)


def compile_prompt(policy: PolicySpec, template: TemplateSpec, settings: ModelSettings, *,
                   count_tokens: TokenCounter = estimate_tokens) -> CompiledPrompt:
    """Compile; raises ``CompileError`` listing every problem with its field."""
    problems = validate_policy(policy) + validate_template(template) + validate_settings(settings)
    if problems:
        raise CompileError(problems)
    system_prompt = render_template(template.body, template_context(policy))
    schema = output_schema(policy)
    user_template = user_message_template(policy)
    tokens, method = count_tokens(system_prompt)
    budget = context_window_for(settings) - settings.max_output_tokens
    if tokens > budget:
        raise CompileError([(
            "system_prompt",
            f"{tokens} tokens ({method}) exceeds the budget of {budget} for model "
            f"{settings.model!r} (context window {context_window_for(settings)} minus "
            f"{settings.max_output_tokens} output tokens)",
        )])
    canonical = {
        "compiler_version": COMPILER_VERSION,
        "policy": {"slug": policy.slug, "version": policy.version},
        "template": {"key": template.key, "version": template.version},
        "settings": asdict(settings),
        "system_prompt": system_prompt,
        "user_message_template": user_template,
        "output_schema": schema,
    }
    return CompiledPrompt(
        system_prompt=system_prompt, user_message_template=user_template, output_schema=schema,
        token_count=tokens, token_count_method=method, token_budget=budget,
        sha256=sha256_hex(canonical), canonical=canonical,
    )
