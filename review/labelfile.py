"""Parse human-label files (pure): one label per JSONL line, or golden-set export lines.

Line formats:
- ``{"external_id", "labeler", "vendor", "label", "labeled_at"?, "role"?, "rule_ids"?,
  "rationale"?, "seconds_spent"?}``: one label;
- a line of a golden-set JSONL export (it has ``gold_label``): each entry of its ``labels``
  list is one label, so an export can be imported back.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from touchstone.lines import LineError, parsed_json_lines
from touchstone.timewindow import label_time_problem

LABEL_FIELDS = {"external_id", "labeler", "vendor", "label", "labeled_at", "role", "rule_ids", "rationale",
                "seconds_spent"}
ROLES = ("review", "adjudication")
MAX_ID = 150


@dataclass(frozen=True)
class ParsedLabel:
    line: int
    external_id: str
    labeler: str
    vendor: str
    label: str
    labeled_at: datetime | None = None
    role: str = "review"
    rule_ids: list[str] = field(default_factory=list)
    rationale: str = ""
    seconds_spent: float | None = None


def _text(data: dict[str, Any], key: str, path: str, line: int, *, max_length: int = MAX_ID) -> str:
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise LineError(path, line, key, "missing")
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise LineError(path, line, key, "must be a string")
    value = str(value).strip()
    if len(value) > max_length:
        raise LineError(path, line, key, f"longer than {max_length} characters")
    return value


def _label(data: dict[str, Any], path: str, line: int, prefix: str = "") -> ParsedLabel:
    def where(key: str) -> str:
        return f"{prefix}{key}"

    unknown = sorted(set(data) - LABEL_FIELDS - ({"external_id"} if prefix else set()))
    if unknown:
        raise LineError(path, line, where(unknown[0]), f"unknown field; allowed: {', '.join(sorted(LABEL_FIELDS))}")
    try:
        labeler = _text(data, "labeler", path, line)
        vendor = _text(data, "vendor", path, line, max_length=100)
        label = _text(data, "label", path, line, max_length=63)
    except LineError as error:
        raise LineError(path, line, where(error.field or ""), error.reason) from None
    labeled_at = None
    if data.get("labeled_at") not in (None, ""):
        raw = data["labeled_at"]
        try:
            labeled_at = datetime.fromisoformat(str(raw))
        except ValueError:
            raise LineError(path, line, where("labeled_at"), f"{raw!r} is not an ISO 8601 date-time") from None
        problem = label_time_problem(labeled_at)
        if problem:
            raise LineError(path, line, where("labeled_at"), f"{raw!r} {problem}" if labeled_at.tzinfo is None
                            else problem)
    role = data.get("role", "review")
    if role not in ROLES:
        raise LineError(path, line, where("role"), f"{role!r}: must be one of {', '.join(ROLES)}")
    rule_ids = data.get("rule_ids", [])
    if not isinstance(rule_ids, list) or not all(isinstance(r, str) for r in rule_ids):
        raise LineError(path, line, where("rule_ids"), "must be a list of strings")
    seconds = data.get("seconds_spent")
    if seconds is not None and (not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0):
        raise LineError(path, line, where("seconds_spent"), "must be a non-negative number")
    rationale = data.get("rationale", "")
    if not isinstance(rationale, str):
        raise LineError(path, line, where("rationale"), "must be a string")
    return ParsedLabel(line=line, external_id="", labeler=labeler, vendor=vendor, label=label, labeled_at=labeled_at,
                       role=role, rule_ids=rule_ids, rationale=rationale,
                       seconds_spent=float(seconds) if seconds is not None else None)


def parse_label_object(data: dict[str, Any], *, path: str, line: int) -> list[ParsedLabel]:
    """One label line's JSON object as its labels. Raises LineError."""
    external_id = _text(data, "external_id", path, line, max_length=255)
    if "gold_label" in data:
        entries = data.get("labels")
        if not isinstance(entries, list) or not entries:
            raise LineError(path, line, "labels", "a golden-set export line needs a non-empty list of labels")
        parsed = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise LineError(path, line, f"labels[{i}]", "expected an object")
            parsed.append(_label(entry, path, line, prefix=f"labels[{i}]."))
    else:
        parsed = [_label(data, path, line)]
    return [ParsedLabel(**{**label.__dict__, "external_id": external_id}) for label in parsed]


def read_labels(handle: TextIO, *, path: str) -> Iterator[ParsedLabel | LineError]:
    """Yield each label, or the error of each bad non-blank line, streaming."""
    return parsed_json_lines(handle, path=path,
                             parse=lambda data, line: parse_label_object(data, path=path, line=line))
