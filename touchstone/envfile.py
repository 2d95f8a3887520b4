"""The demo settings file (``<state>/demo.env``): ``NAME=value`` lines, ``#`` comments.

``make demo`` writes it (mode 0600: it holds Label Studio's token) and the settings module
reads it, so ``manage.py`` in any shell reaches the demo stack. No quoting and no expansion:
a value is everything after the first ``=`` up to the end of the line. No Django import here:
the settings module imports this before Django is configured.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, MutableMapping
from pathlib import Path

NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


class EnvFileError(ValueError):
    """A line that is not ``NAME=value``; the message names the file and the line."""


def env_file_read(path: Path) -> dict[str, str]:
    """The file's ``NAME=value`` pairs in order. Raises EnvFileError naming ``path:line``."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not NAME.fullmatch(name.strip()):
            raise EnvFileError(f"{path}:{number}: expected NAME=value, got {raw!r}")
        values[name.strip()] = value.strip()
    return values


def env_file_apply(path: Path, environ: MutableMapping[str, str]) -> dict[str, str]:
    """Set in ``environ`` each variable of the file that ``environ`` does not have (the
    environment always wins); returns the ones it set. A missing file sets nothing."""
    if not path.is_file():
        return {}
    applied = {name: value for name, value in env_file_read(path).items() if name not in environ}
    environ.update(applied)
    return applied


def env_file_write(path: Path, values: Mapping[str, str], *, comments: list[str]) -> Path:
    """Write ``values`` (and ``comments`` above them) to ``path`` with mode 0600, atomically:
    a reader sees the old file or the new one. Raises ValueError for a name or value that
    cannot be written as one line."""
    lines = [f"# {comment}" for comment in comments]
    for name, value in values.items():
        if not NAME.fullmatch(name) or "\n" in value or "\r" in value:
            raise ValueError(f"cannot write {name}={value!r} as one NAME=value line")
        lines.append(f"{name}={value}")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)  # O_CREAT's mode only applies to a new file, and umask narrows it
        os.write(descriptor, ("\n".join(lines) + "\n").encode("utf-8"))
    finally:
        os.close(descriptor)
    os.replace(temporary, path)
    return path
