"""Content import in bounded memory: import 20,000 then 100,000 lines into a fresh SQLite
database and compare peak RSS growth. Bounded memory means the 5x larger file costs about the
same memory: ratio = growth(100k) / growth(20k), target <= 1.5. Also prints lines/s."""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
state = Path(tempfile.mkdtemp(prefix="touchstone-bench-"))
os.environ.update(TOUCHSTONE_STATE_DIR=str(state), DATABASE_URL=f"sqlite:///{state / 'bench.sqlite3'}",
                  DJANGO_SETTINGS_MODULE="touchstone.settings")

import django  # noqa: E402

django.setup()
from django.core.management import call_command  # noqa: E402

from content.services.content import content_import  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_file(path: Path, lines: int, prefix: str) -> None:
    with path.open("w") as handle:
        for i in range(lines):
            handle.write(json.dumps({
                "external_id": f"{prefix}-{i}", "components": {"query": f"question {i} " * 8,
                                                             "response": f"answer number {i} " * 20},
                "metadata": {"country": ["NG", "IN", "US"][i % 3], "surface": "chat"},
                "scores": {"toxicity": (i % 1000) / 1000}}) + "\n")


def main() -> None:
    call_command("migrate", verbosity=0)
    small, large = state / "small.jsonl", state / "large.jsonl"
    make_file(small, 20_000, "s")
    make_file(large, 100_000, "l")
    base = peak_rss_mb()
    content_import(path=small, source="bench-small")
    after_small = peak_rss_mb()
    start = time.perf_counter()
    job = content_import(path=large, source="bench-large")
    elapsed = time.perf_counter() - start
    after_large = peak_rss_mb()
    growth_small = max(after_small - base, 1.0)
    growth_large = max(after_large - base, 1.0)
    ratio = growth_large / growth_small
    print(f"imported {job.imported} lines in {elapsed:.1f} s ({job.imported / elapsed:.0f} lines/s); "
          f"peak RSS {base:.0f} MB → {after_small:.0f} MB (20k) → {after_large:.0f} MB (100k)")
    print(f"BENCH content_import_memory {growth_large:.0f} MB ratio={ratio:.2f} target=1.5")


if __name__ == "__main__":
    main()
