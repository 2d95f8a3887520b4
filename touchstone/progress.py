"""A progress bar on a terminal, silence elsewhere (logs, CI, tests)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tqdm import tqdm


@contextmanager
def progress_bar(*, total: int | None, unit: str, desc: str, unit_scale: bool = False) -> Iterator[Any]:
    bar = tqdm(total=total, unit=unit, desc=desc, unit_scale=unit_scale, file=sys.stderr,
               disable=not sys.stderr.isatty(), leave=False, dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()
