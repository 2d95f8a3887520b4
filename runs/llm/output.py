"""Validate one LLM answer against the prompt version's JSON Schema. Pure: no Django."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import jsonschema


class InvalidLLMOutput(ValueError):
    """The answer cannot be used; ``reason`` says why (kept with the raw text)."""


@functools.lru_cache(maxsize=64)
def _validator(schema_json: str) -> jsonschema.protocols.Validator:
    # Checking and compiling a schema costs far more than validating one answer: do it once.
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@dataclass(frozen=True)
class ParsedJudgement:
    label: str
    confidence: float
    rationale: str
    violated_rule_ids: list[str]


def parse_judgement(content: str | None, *, finish_reason: str | None, refusal: str | None,
                    schema: dict[str, Any]) -> ParsedJudgement:
    if refusal:
        raise InvalidLLMOutput(f"the model refused: {refusal[:200]}")
    if finish_reason == "length":
        raise InvalidLLMOutput("output truncated (finish_reason=length): raise max output tokens")
    if not content:
        raise InvalidLLMOutput("empty answer")
    try:
        data = json.loads(content)
    except json.JSONDecodeError as exc:
        raise InvalidLLMOutput(f"not JSON: {exc.msg} at column {exc.colno}") from exc
    error = jsonschema.exceptions.best_match(_validator(json.dumps(schema, sort_keys=True)).iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise InvalidLLMOutput(f"does not match the output schema at {where}: {error.message}")
    return ParsedJudgement(label=data["label"], confidence=float(data["confidence"]),
                           rationale=data["rationale"], violated_rule_ids=list(data["violated_rule_ids"]))
