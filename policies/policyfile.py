"""Policies as files: Markdown with a YAML front matter. Pure: no Django.

Format (documented in the README)::

    ---
    slug: harassment
    title: Harassment and bullying
    labels:
      - key: not_harassment
        name: Not harassment
        definition: ...
        violation: false
        always_human_review: false      # optional
    rules:
      - id: HAR-1
        label: targeted_harassment      # optional
        text: ...
    examples:
      - label: targeted_harassment
        polarity: positive              # positive (is the label) | negative (near miss)
        text: ...
        explanation: ...                # optional
    publish_gate:                       # optional: see policies.gate
      golden_set: harassment-gold
      metric: f1
      at_least: 0.8
    ---
    The policy text in Markdown.

``parse_policy_file`` (the spec) and ``parse_policy_file_full`` (the spec and the policy's
publish gate, which belongs to the policy, not to the version, and is not part of the spec)
raise ``LineError`` with the file, the 1-based line and the field (``labels[2].key``,
``publish_gate.metric``) of the first problem it meets; ``format_policy_file`` writes the
same format back, so ``parse(format(spec)) == spec``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from policies.compiler import ExampleSpec, LabelSpec, PolicySpec, RuleSpec, validate_policy
from policies.gate import GateProblem, PublishGateSpec, publish_gate_from_data
from touchstone.lines import LineError


@dataclass(frozen=True)
class PolicyFile:
    spec: PolicySpec
    publish_gate: PublishGateSpec | None = None


_TOP_FIELDS = {"slug", "title", "ordered_labels", "sensitive_images", "labels", "rules", "examples",
               "publish_gate"}
_LABEL_FIELDS = {"key", "name", "definition", "violation", "always_human_review"}
_RULE_FIELDS = {"id", "label", "text"}
_EXAMPLE_FIELDS = {"label", "polarity", "text", "explanation"}


class _Located:
    """Plain data from a YAML node tree, remembering the line of every field path."""

    def __init__(self, path: str, line_offset: int) -> None:
        self.path = path
        self.offset = line_offset
        self.lines: dict[str, int] = {}

    def error(self, field: str | None, reason: str, line: int | None = None) -> LineError:
        if line is None and field is not None:
            probe = field
            while probe and probe not in self.lines:
                probe = probe.rpartition(".")[0] if "." in probe else probe.rpartition("[")[0]
            line = self.lines.get(probe)
        return LineError(self.path, line, field, reason)

    def convert(self, node: yaml.Node, field: str) -> Any:
        self.lines[field] = node.start_mark.line + 1 + self.offset
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise self.error(field, "keys must be plain names",
                                     key_node.start_mark.line + 1 + self.offset)
                child = f"{field}.{key_node.value}" if field else key_node.value
                if key_node.value in result:
                    raise self.error(child, "given twice", key_node.start_mark.line + 1 + self.offset)
                result[key_node.value] = self.convert(value_node, child)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, f"{field}[{i}]") for i, item in enumerate(node.value)]
        return yaml.safe_load(yaml.serialize(node))


def _split_front_matter(text: str, path: str) -> tuple[str, str, int]:
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise LineError(path, 1, None, "expected a YAML front matter starting with '---'")
    for index in range(1, len(lines)):
        if lines[index].strip() == "---":
            return "".join(lines[1:index]), "".join(lines[index + 1:]), 1
    raise LineError(path, len(lines), None, "the front matter is not closed with '---'")


def _require(loc: _Located, data: dict[str, Any], field: str, name: str, kind: type,
             required: bool = True, default: Any = None) -> Any:
    path = f"{field}.{name}" if field else name
    if name not in data:
        if required:
            raise loc.error(field or None, f"missing field {name!r}")
        return default
    value = data[name]
    if kind is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise loc.error(path, f"expected {kind.__name__}, got {type(value).__name__}")
    return value


def _check_fields(loc: _Located, data: Any, field: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise loc.error(field, "expected a mapping")
    for name in data:
        if name not in allowed:
            raise loc.error(f"{field}.{name}" if field else name,
                            f"unknown field; allowed: {', '.join(sorted(allowed))}")
    return data


def _refuse_anchors_and_aliases(front: str, path: str, offset: int) -> None:
    """A few KB of nested aliases expand to gigabytes (a "billion laughs"), and a policy file
    never needs them: refuse them before anything is built, from the tokens alone (linear)."""
    try:
        for token in yaml.scan(front, Loader=yaml.SafeLoader):
            if isinstance(token, yaml.AnchorToken | yaml.AliasToken):
                kind = "anchor &" if isinstance(token, yaml.AnchorToken) else "alias *"
                raise LineError(path, token.start_mark.line + 1 + offset, None,
                                f"YAML {kind}{token.value} is not allowed in a policy file (no anchors or aliases)")
    except yaml.YAMLError:
        return  # malformed YAML: composing it reports where


def parse_policy_file(text: str, *, path: str = "<policy>", version: int = 0) -> PolicySpec:
    return parse_policy_file_full(text, path=path, version=version).spec


def parse_policy_file_full(text: str, *, path: str = "<policy>", version: int = 0) -> PolicyFile:
    front, body, offset = _split_front_matter(text, path)
    _refuse_anchors_and_aliases(front, path, offset)
    try:
        node = yaml.compose(front, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 + offset if mark is not None else None
        raise LineError(path, line, None, f"invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    loc = _Located(path, offset)
    if node is None:
        raise LineError(path, 2, None, "the front matter is empty")
    data = _check_fields(loc, loc.convert(node, ""), "", _TOP_FIELDS)
    slug = _require(loc, data, "", "slug", str)
    title = _require(loc, data, "", "title", str)

    labels = []
    for i, raw in enumerate(_require(loc, data, "", "labels", list)):
        f = f"labels[{i}]"
        item = _check_fields(loc, raw, f, _LABEL_FIELDS)
        labels.append(LabelSpec(
            key=_require(loc, item, f, "key", str), name=_require(loc, item, f, "name", str),
            definition=_require(loc, item, f, "definition", str),
            is_violation=_require(loc, item, f, "violation", bool),
            always_human_review=_require(loc, item, f, "always_human_review", bool, False, False),
        ))
    rules = []
    for i, raw in enumerate(_require(loc, data, "", "rules", list, False, [])):
        f = f"rules[{i}]"
        item = _check_fields(loc, raw, f, _RULE_FIELDS)
        rules.append(RuleSpec(rule_id=_require(loc, item, f, "id", str),
                              text=_require(loc, item, f, "text", str),
                              label_key=_require(loc, item, f, "label", str, False)))
    examples = []
    for i, raw in enumerate(_require(loc, data, "", "examples", list, False, [])):
        f = f"examples[{i}]"
        item = _check_fields(loc, raw, f, _EXAMPLE_FIELDS)
        examples.append(ExampleSpec(
            label_key=_require(loc, item, f, "label", str), text=_require(loc, item, f, "text", str),
            polarity=_require(loc, item, f, "polarity", str, False, "positive"),
            explanation=_require(loc, item, f, "explanation", str, False, ""),
        ))
    spec = PolicySpec(slug=slug, title=title, version=version, text=body.strip() + "\n",
                      labels=tuple(labels), rules=tuple(rules), examples=tuple(examples),
                      ordered_labels=_require(loc, data, "", "ordered_labels", bool, False, False),
                      sensitive_images=_require(loc, data, "", "sensitive_images", bool, False, False))
    problems = validate_policy(spec)
    if problems:
        field, reason = problems[0]
        raise loc.error(field, reason)
    if not body.strip():
        raise LineError(path, None, "text", "the policy text after the front matter is empty")
    gate = None
    if "publish_gate" in data:
        try:
            gate = publish_gate_from_data(data["publish_gate"], labels=tuple(label.key for label in spec.labels))
        except GateProblem as exc:
            raise loc.error("publish_gate" if exc.field == "publish_gate" else f"publish_gate.{exc.field}",
                            exc.reason) from None
    return PolicyFile(spec=spec, publish_gate=gate)



class _Dumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_presenter)


def format_policy_file(spec: PolicySpec, publish_gate: PublishGateSpec | None = None) -> str:
    labels = []
    for label in spec.labels:
        entry: dict[str, Any] = {"key": label.key, "name": label.name,
                                 "definition": label.definition, "violation": label.is_violation}
        if label.always_human_review:
            entry["always_human_review"] = True
        labels.append(entry)
    rules = []
    for rule in spec.rules:
        rule_entry: dict[str, Any] = {"id": rule.rule_id}
        if rule.label_key is not None:
            rule_entry["label"] = rule.label_key
        rule_entry["text"] = rule.text
        rules.append(rule_entry)
    examples = []
    for example in spec.examples:
        ex: dict[str, Any] = {"label": example.label_key, "polarity": example.polarity,
                              "text": example.text}
        if example.explanation:
            ex["explanation"] = example.explanation
        examples.append(ex)
    front: dict[str, Any] = {"slug": spec.slug, "title": spec.title}
    if spec.ordered_labels:
        front["ordered_labels"] = True
    if spec.sensitive_images:
        front["sensitive_images"] = True
    front["labels"] = labels
    if rules:
        front["rules"] = rules
    if examples:
        front["examples"] = examples
    if publish_gate is not None:
        front["publish_gate"] = publish_gate.as_json()
    dumped = yaml.dump(front, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return f"---\n{dumped}---\n{spec.text.strip()}\n"
