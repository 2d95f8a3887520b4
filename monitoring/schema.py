"""The monitor file: a YAML document checked against a declared JSON Schema (``MONITOR_SCHEMA``),
every error reported as ``PATH:LINE: field: reason``. Pure: PyYAML and jsonschema, no Django.

Example (every field is in the schema below, with its default)::

    name: harassment-daily
    policy: harassment
    frame:
      glob: /data/chats/date={date}/*.parquet     # or: content: {source: chats, date_field: day}
      parts: [text]
    sample: {design: uniform, size: 200, seed: 7}
    labeling:
      prompt: {template: json_classifier, model: gpt-4.1-mini, seed: 1}   # or prompt_version: SHA256-PREFIX
      voters: [{endpoint: openai, model: gpt-4.1-mini}]
      confidence_threshold: 0.7
    audit: {share: 0.1, queue: harassment-audit, label_deadline_hours: 48}
    estimates: {estimators: [hajek, ppi++], alpha: 0.05}
    cadence: daily
    start: 2026-11-01
    overlap_days: 7
    alerts:
      - {name: too-high, kind: estimate_above, label: any violation, threshold: 0.1}
"""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

import jsonschema
import yaml

from touchstone.lines import LineError

ESTIMATOR_NAMES = ["ht", "hajek", "stratified", "ppi", "ppi++", "stratified-ppi"]
ALERT_KINDS = ["estimate_above", "ci_lower_above_trailing", "agreement_below", "vendor_gold_accuracy_below"]
DEFAULT_ESTIMATORS = ["hajek", "ppi++"]

_NAME = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,59}$"}
_SHARE = {"type": "number", "minimum": 0, "maximum": 1}

ALERT_RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "kind"],
    "additionalProperties": False,
    "properties": {
        "name": _NAME,
        "kind": {"enum": ALERT_KINDS},
        "label": {"type": "string", "minLength": 1},
        "estimator": {"enum": ESTIMATOR_NAMES},
        "threshold": _SHARE,
        "window": {"type": "integer", "minimum": 1, "maximum": 52},
        "vendor": {"type": "string", "minLength": 1},
    },
    "allOf": [
        {"if": {"properties": {"kind": {"const": "estimate_above"}}}, "then": {"required": ["label", "threshold"]}},
        {"if": {"properties": {"kind": {"const": "ci_lower_above_trailing"}}}, "then": {"required": ["label"]}},
        {"if": {"properties": {"kind": {"const": "agreement_below"}}}, "then": {"required": ["threshold"]}},
        {"if": {"properties": {"kind": {"const": "vendor_gold_accuracy_below"}}},
         "then": {"required": ["vendor", "threshold"]}},
    ],
}

MONITOR_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["name", "policy", "frame", "sample", "labeling", "cadence", "start"],
    "additionalProperties": False,
    "properties": {
        "name": _NAME,
        "policy": {"type": "string", "minLength": 1},
        "frame": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "glob": {"type": "string", "pattern": "\\{date\\}"},
                "content": {"type": "object", "additionalProperties": False, "required": ["source", "date_field"],
                            "properties": {"source": {"type": "string", "minLength": 1},
                                           "date_field": {"type": "string", "minLength": 1}}},
                "parts": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "metadata": {"type": "array", "items": {"type": "string"}},
            },
            "oneOf": [{"required": ["glob"]}, {"required": ["content"]}],
        },
        "sample": {
            "type": "object", "additionalProperties": False, "required": ["size", "seed"],
            "properties": {
                "design": {"enum": ["uniform", "stratified", "score_weighted"], "default": "uniform"},
                "size": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
                "seed": {"type": "integer", "minimum": 0},
                "id_column": {"type": "string"},
                "stratify_by": {"type": "string"},
                "weight_column": {"type": "string"},
                "score_column": {"type": "string"},
                "floor": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            },
        },
        "labeling": {
            "type": "object", "additionalProperties": False, "required": ["voters"],
            "properties": {
                "prompt_version": {"type": "string", "pattern": "^[0-9a-f]{8,64}$"},
                "prompt": {"type": "object", "additionalProperties": False, "required": ["template", "model"],
                           "properties": {"template": {"type": "string"}, "model": {"type": "string"},
                                          "temperature": {"type": "number", "minimum": 0, "maximum": 2},
                                          "seed": {"type": "integer"},
                                          "max_output_tokens": {"type": "integer", "minimum": 16}}},
                "voters": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "additionalProperties": False, "required": ["endpoint", "model"],
                    "properties": {"endpoint": {"type": "string"}, "model": {"type": "string"},
                                   "temperature": {"type": "number", "minimum": 0, "maximum": 2},
                                   "seed": {"type": "integer"}}}},
                "confidence_threshold": _SHARE,
                "chunk_size": {"type": "integer", "minimum": 1},
                "max_attempts": {"type": "integer", "minimum": 1, "maximum": 20},
            },
            "oneOf": [{"required": ["prompt_version"]}, {"required": ["prompt"]}],
        },
        "audit": {
            "type": "object", "additionalProperties": False,
            "properties": {"share": _SHARE, "queue": {"type": "string"},
                           "label_deadline_hours": {"type": "number", "minimum": 0, "maximum": 24 * 90}},
        },
        "estimates": {
            "type": "object", "additionalProperties": False,
            "properties": {"estimators": {"type": "array", "items": {"enum": ESTIMATOR_NAMES}, "minItems": 1,
                                          "uniqueItems": True},
                           "labels": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                           "alpha": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                           "golden_set": {"type": "string"}},
        },
        "cadence": {"enum": ["daily", "weekly"]},
        "start": {"type": "string", "format": "date", "pattern": "^\\d{4}-\\d{2}-\\d{2}$"},
        "overlap_days": {"type": "integer", "minimum": 0, "maximum": 365},
        "alerts": {"type": "array", "items": ALERT_RULE_SCHEMA},
    },
}

DEFAULTS: dict[str, Any] = {
    "sample": {"design": "uniform", "id_column": "id", "floor": 0.01},
    "labeling": {"confidence_threshold": 0.7, "chunk_size": 100, "max_attempts": 4},
    "audit": {"share": 0.05, "label_deadline_hours": 48},
    "estimates": {"estimators": DEFAULT_ESTIMATORS, "alpha": 0.05},
    "overlap_days": 7,
    "alerts": [],
}


class _Located:
    """Plain data from a YAML node tree, remembering the line of every field path."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lines: dict[str, int] = {}

    def convert(self, node: yaml.Node, field: str) -> Any:
        self.lines[field] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode):
                    raise LineError(self.path, line, field or None, "keys must be plain names")
                child = f"{field}.{key_node.value}" if field else key_node.value
                if key_node.value in result:
                    raise LineError(self.path, line, child, "given twice")
                result[key_node.value] = self.convert(value_node, child)
                self.lines[child] = line
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, f"{field}[{i}]") for i, item in enumerate(node.value)]
        try:
            value = yaml.safe_load(yaml.serialize(node))
        except ValueError:  # e.g. a date-like 2026-13-01: kept as text, the field's check names it
            return node.value
        return value.isoformat() if isinstance(value, datetime.date) else value

    def line_of(self, field: str) -> int | None:
        probe = field
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe.rpartition(".")[0] if "." in probe else probe.rpartition("[")[0]
        return self.lines.get("")


def _field(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _reason(error: jsonschema.ValidationError) -> tuple[str, str]:
    """(field, reason) of a schema error, in words a person reading the file can act on."""
    field = _field(error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return field, f"missing field {missing!r}"
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        return (f"{field}.{extra[0]}" if field else extra[0]), f"unknown field (allowed: {allowed})"
    if error.validator == "oneOf":
        options = [next(iter(s.get("required", ["?"]))) for s in error.validator_value]
        return field, f"give exactly one of {' or '.join(repr(o) for o in options)}"
    if error.validator == "pattern" and field == "frame.glob":
        return field, "the glob must contain the {date} placeholder (each cycle reads its day's partition)"
    if error.validator == "enum":
        return field, f"{error.instance!r} is not one of {', '.join(map(str, error.validator_value))}"
    return field, error.message


def parse_monitor(text: str, *, path: str) -> dict[str, Any]:
    """The monitor document with defaults filled in, or LineError at the first problem
    (``path:line: field: reason``); the schema's errors come in file order."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise LineError(path, mark.line + 1 if mark else None, None,
                        f"not valid YAML: {getattr(exc, 'problem', None) or exc}") from exc
    if node is None or not isinstance(node, yaml.MappingNode):
        raise LineError(path, 1, None, "expected a YAML mapping of monitor fields")
    located = _Located(path)
    data = located.convert(node, "")
    errors = sorted(jsonschema.Draft202012Validator(MONITOR_SCHEMA).iter_errors(data),
                    key=lambda e: located.line_of(_field(e.absolute_path)) or 0)
    if errors:
        field, reason = _reason(errors[0])
        raise LineError(path, located.line_of(field), field or None, reason)
    try:
        datetime.date.fromisoformat(data["start"])
    except ValueError as exc:
        raise LineError(path, located.line_of("start"), "start", f"{data['start']!r} is not a date") from exc
    for i, rule in enumerate(data.get("alerts", [])):
        if [r["name"] for r in data["alerts"]].index(rule["name"]) != i:
            raise LineError(path, located.line_of(f"alerts[{i}].name"), f"alerts[{i}].name",
                            f"{rule['name']!r} names another rule already")
    return with_defaults(data)


def with_defaults(data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    for key, default in DEFAULTS.items():
        if isinstance(default, dict):
            out[key] = {**default, **(data.get(key) or {})}
        elif key not in out:
            out[key] = default
    out["alerts"] = [{"window": 4, **rule} if rule["kind"] == "ci_lower_above_trailing" else rule
                     for rule in out["alerts"]]
    return out


def line_of_field(text: str, field: str) -> int | None:
    """The line of ``field`` in a monitor file (for errors found after the schema: an unknown
    policy, endpoint or queue)."""
    located = _Located("")
    node = yaml.compose(text)
    if node is not None:
        located.convert(node, "")
    return located.line_of(field)


def cycle_seed(monitor_seed: int, partition: datetime.date) -> int:
    """The seed of one partition's draw: a hash of the monitor's seed and the date, so a re-run
    or backfill of that date draws the same sample, and different dates draw independently."""
    digest = hashlib.sha256(f"{monitor_seed}:{partition.isoformat()}".encode()).digest()
    return int.from_bytes(digest[:7], "big")  # < 2**56: fits a BigIntegerField and every seed consumer


def partition_dates(start: datetime.date, first: datetime.date, last: datetime.date,
                    cadence: str) -> list[datetime.date]:
    """The partition dates of a monitor between ``first`` and ``last`` (inclusive): every day
    from ``start`` (daily) or every 7th day from ``start`` (weekly)."""
    step = 7 if cadence == "weekly" else 1
    first = max(first, start)
    offset = (first - start).days % step
    if offset:
        first += datetime.timedelta(days=step - offset)
    out, day = [], first
    while day <= last:
        out.append(day)
        day += datetime.timedelta(days=step)
    return out
