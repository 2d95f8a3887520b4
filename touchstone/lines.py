"""Reading line-oriented input files (pure): one located error type for every file format, and
the one JSONL reader that content files and label files share.

Every bad line is reported as ``PATH:LINE: field: reason`` (the field, or the line for an error
of the whole file, may be unknown), so a user can go straight to it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO, TypeVar

T = TypeVar("T")


class LineError(ValueError):
    """Bad input at a place in a file: ``PATH:LINE: field: reason``."""

    def __init__(self, path: str, line: int | None, field: str | None, reason: str) -> None:
        self.path, self.line, self.field, self.reason = path, line, field, reason
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {field}: {reason}" if field else f"{where}: {reason}")


def json_object_lines(handle: TextIO, *, path: str) -> Iterator[tuple[int, dict[str, Any]] | LineError]:
    """Each non-blank line as (line number, JSON object), or the LineError that says why it is
    not one; streaming, so a file of any size costs one line of memory."""
    for number, raw in enumerate(handle, start=1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield LineError(path, number, None, f"malformed JSON: {exc.msg} at column {exc.colno}")
            continue
        if not isinstance(data, dict):
            yield LineError(path, number, None, "expected a JSON object")
            continue
        yield number, data


def parsed_json_lines(handle: TextIO, *, path: str,
                      parse: Callable[[dict[str, Any], int], Iterable[T]]) -> Iterator[T | LineError]:
    """What ``parse(object, line)`` makes of each JSON line (it may make several records of
    one line, or raise LineError), or the LineError of each bad line; streaming."""
    for record in json_object_lines(handle, path=path):
        if isinstance(record, LineError):
            yield record
            continue
        number, data = record
        try:
            yield from parse(data, number)
        except LineError as error:
            yield error
