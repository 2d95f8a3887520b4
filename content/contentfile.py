"""Parse content import lines (JSONL, CSV). Pure: no Django.

JSONL, one item per line::

    {"external_id": "a-1", "components": {"query": "...", "response": "...",
     "images": ["<path, file:// URL, data: URI or http(s) URL>"]},
     "target": "response", "metadata": {...}, "scores": {"<signal>": 0.87}}

``target`` (optional) names the part to judge. CSV (text only): a header with
``external_id``, one column per part (``query``, ``response``…), ``target``,
``metadata.<key>`` and ``score.<signal>`` columns. Every error names path, line and field.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from touchstone.lines import LineError, parsed_json_lines

ALLOWED_TOP = {"external_id", "components", "target", "metadata", "scores"}
# A golden-set JSONL export is also a content file: its gold fields are read by
# ``labels import`` and skipped here, so an export can be imported back as is.
GOLDEN_EXPORT_FIELDS = {"source", "content_sha256", "gold_label", "decided_by", "labels", "llm", "lineage"}


@dataclass(frozen=True)
class ParsedItem:
    line: int
    external_id: str
    parts: dict[str, str]
    images: list[str] = field(default_factory=list)
    target: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Limits:
    parts: tuple[str, ...]
    max_part_chars: int
    max_images: int


def _check_item(path: str, line: int, external_id: Any, parts: dict[str, Any], images: list[Any],
                target: Any, metadata: Any, scores: Any, limits: Limits) -> ParsedItem:
    def fail(where: str | None, reason: str) -> LineError:
        return LineError(path, line, where, reason)

    if not isinstance(external_id, (str, int)) or isinstance(external_id, bool) or str(external_id).strip() == "":
        raise fail("external_id", "missing or empty")
    external_id = str(external_id).strip()
    if len(external_id) > 255:
        raise fail("external_id", "longer than 255 characters")
    clean: dict[str, str] = {}
    for name, value in parts.items():
        where = f"components.{name}"
        if name not in limits.parts:
            raise fail(where, f"unknown component; allowed: {', '.join(limits.parts)}, images")
        if value is None:
            continue
        if not isinstance(value, str):
            raise fail(where, f"expected text, got {type(value).__name__}")
        if len(value) > limits.max_part_chars:
            raise fail(where, f"{len(value)} characters exceeds the limit of {limits.max_part_chars}")
        if value.strip():
            clean[name] = value
    if not isinstance(images, list) or not all(isinstance(i, str) and i.strip() for i in images):
        raise fail("components.images", "expected a list of paths or URLs")
    if len(images) > limits.max_images:
        raise fail("components.images", f"{len(images)} images exceeds the limit of {limits.max_images}")
    if not clean and not images:
        raise fail("components", "no text part and no image: nothing to label")
    target = "" if target is None else target
    if not isinstance(target, str) or (target and target not in clean):
        raise fail("target", f"{target!r} is not one of this item's parts ({', '.join(clean)})")
    if not isinstance(metadata, dict):
        raise fail("metadata", "expected an object")
    if not isinstance(scores, dict):
        raise fail("scores", "expected an object of signal: number")
    clean_scores: dict[str, float] = {}
    for signal, value in scores.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise fail(f"scores.{signal}", f"expected a finite number, got {value!r}")
        clean_scores[str(signal)] = float(value)
    return ParsedItem(line, external_id, clean, [i.strip() for i in images], target, metadata, clean_scores)


def parse_item(data: dict[str, Any], *, path: str, line: int, limits: Limits) -> ParsedItem:
    """One content line's JSON object as an item. Raises LineError."""
    unknown = sorted(set(data) - ALLOWED_TOP - (GOLDEN_EXPORT_FIELDS if "gold_label" in data else set()))
    if unknown:
        raise LineError(path, line, unknown[0], f"unknown field; allowed: {', '.join(sorted(ALLOWED_TOP))}")
    components = data.get("components")
    if not isinstance(components, dict):
        raise LineError(path, line, "components", "missing, or not an object")
    components = dict(components)
    images = components.pop("images", [])
    return _check_item(path, line, data.get("external_id"), components, images, data.get("target"),
                       data.get("metadata", {}), data.get("scores", {}), limits)


def read_jsonl(handle: TextIO, *, path: str, limits: Limits) -> Iterator[ParsedItem | LineError]:
    """Yield an item or the error of each non-blank line, streaming."""
    return parsed_json_lines(handle, path=path,
                             parse=lambda data, line: (parse_item(data, path=path, line=line, limits=limits),))


def read_csv(handle: TextIO, *, path: str, limits: Limits) -> Iterator[ParsedItem | LineError]:
    reader = csv.DictReader(handle)
    header = reader.fieldnames or []
    if "external_id" not in header:
        yield LineError(path, 1, "external_id", "the CSV header has no external_id column")
        return
    for column in header:
        if column in ("external_id", "target") or column.startswith(("metadata.", "score.")):
            continue
        if column not in limits.parts:
            yield LineError(path, 1, column, f"unknown column; parts allowed: {', '.join(limits.parts)}")
            return
    end_of_previous = reader.line_num
    for row in reader:
        number = end_of_previous + 1  # where the record starts: a quoted field may span lines
        end_of_previous = reader.line_num
        try:
            scores: dict[str, Any] = {}
            for column, value in row.items():
                if column and column.startswith("score.") and value not in (None, ""):
                    try:
                        scores[column[6:]] = float(value)
                    except ValueError:
                        raise LineError(path, number, column, f"{value!r} is not a number") from None
            parts = {c: v for c, v in row.items() if c in limits.parts}
            metadata = {c[9:]: v for c, v in row.items() if c and c.startswith("metadata.") and v not in (None, "")}
            yield _check_item(path, number, row.get("external_id"), parts, [], row.get("target") or "",
                              metadata, scores, limits)
        except LineError as error:
            yield error


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
