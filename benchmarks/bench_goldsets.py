"""Golden sets at 100,000 items × 3 human labels on SQLite.

Builds the data once in a fresh database, then measures each step in a fresh interpreter so
that its peak RSS is its own:
- freeze: seconds (target < 10) and peak RSS (target < 500 MB);
- stats: recomputing every statistic incl. bootstrap CIs from the frozen items (target < 5 s);
- JSONL and Parquet export: items/s, and the ratio to a raw ``sqlite3`` scan of the same rows
  written as lines, in the same process, best of three alternating runs each (target ratio
  >= 0.5, and >= 50,000 items/s).
Prints one BENCH line per target; the last line is the freeze time.
"""

from __future__ import annotations

import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ITEMS = int(os.environ.get("BENCH_GOLDSET_ITEMS", "100000"))
LABELS = ["not_harassment", "insult", "hate_harassment", "sexual_harassment", "threat"]


def setup_django(state: Path) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.update(TOUCHSTONE_STATE_DIR=str(state), DATABASE_URL=f"sqlite:///{state / 'bench.sqlite3'}",
                      DJANGO_SETTINGS_MODULE="touchstone.settings")
    import django

    django.setup()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(state: Path) -> None:
    """Migrate, publish the harassment policy, insert the items and 3 labels per item."""
    import random

    from benchdb import migrate_and_publish_harassment
    from django.utils import timezone

    from content.models import ContentItem
    from review.models import HumanLabel, Labeler, Vendor

    version = migrate_and_publish_harassment()
    vendors = [Vendor.objects.create(name=f"vendor-{v}") for v in range(3)]
    labelers = Labeler.objects.bulk_create([Labeler(vendor=vendors[i % 3], external_id=f"ann{i}") for i in range(60)])
    rng = random.Random(7)
    now = timezone.now()
    for start in range(0, ITEMS, 10_000):
        items = ContentItem.objects.bulk_create([
            ContentItem(source="bench", external_id=f"item-{n:07d}",
                        parts={"query": f"question {n} " * 6, "response": f"answer number {n} " * 15},
                        metadata={"surface": "chat", "country": ["NG", "IN", "US"][n % 3]},
                        content_sha256=f"{n:064x}") for n in range(start, min(start + 10_000, ITEMS))],
            batch_size=2000)
        rows = []
        for item in items:
            truth = rng.choice(LABELS)
            first = rng.randrange(60)
            for k in range(3):
                label = truth if rng.random() < 0.85 else rng.choice(LABELS)
                rows.append(HumanLabel(item=item, policy_version=version, labeler=labelers[(first + 7 * k) % 60],
                                       source="import", label=label, labeled_at=now))
        HumanLabel.objects.bulk_create(rows, batch_size=5000)


def measure(step: str, state: Path) -> dict:
    """Run in a fresh interpreter (see __main__): one step, its time and its own peak RSS."""
    from goldsets.exports import goldset_version_export
    from goldsets.freeze import FreezeRule
    from goldsets.models import GoldenSetVersion
    from goldsets.services import goldset_version_build, goldset_version_freeze_request, goldset_version_stats_compute
    from policies.models import PolicyVersion

    base = peak_rss_mb()
    started = time.perf_counter()
    if step == "freeze":
        request = goldset_version_freeze_request(name="bench", policy_version=PolicyVersion.objects.get(),
                                                 rule=FreezeRule())
        version = goldset_version_build(version_id=request.pk)
        result = {"items": version.item_count}
    else:
        version = GoldenSetVersion.objects.get(status="frozen")
        if step == "stats":
            stats = goldset_version_stats_compute(version=version)
            result = {"alpha": stats["krippendorff_alpha"]["value"]}
        else:
            # Alternate reference and export, best of three each: the machine's noise cancels out.
            raw_times, export_times = [], []
            for _ in range(3):
                raw_times.append(raw_scan_seconds(state)[0])
                begin = time.perf_counter()
                export = goldset_version_export(version=version, fmt=step, output=state / f"export.{step}")
                export_times.append(time.perf_counter() - begin)
            result = {"items": export.items, "raw_seconds": min(raw_times), "export_seconds": min(export_times)}
    result.update(seconds=time.perf_counter() - started, peak_rss_mb=peak_rss_mb(), base_rss_mb=base)
    return result


def raw_scan_seconds(state: Path) -> tuple[float, int]:
    """The reference: read the same rows with sqlite3 and write them as lines, nothing else."""
    started = time.perf_counter()
    connection = sqlite3.connect(state / "bench.sqlite3")
    rows = connection.execute(
        "SELECT external_id, source, parts, metadata, content_sha256, gold_label, decided_by, labels, llm, lineage "
        "FROM goldsets_goldenitem ORDER BY version_id, position")
    count = 0
    with (state / "raw.jsonl").open("w") as out:
        for row in rows:
            out.write("\t".join("" if value is None else str(value) for value in row) + "\n")
            count += 1
    connection.close()
    return time.perf_counter() - started, count


def run_step(step: str, state: Path) -> dict:
    output = subprocess.run([sys.executable, __file__, "--measure", step, str(state)], check=True,
                            capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    state = Path(tempfile.mkdtemp(prefix="touchstone-bench-goldsets-"))
    started = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--build", str(state)], check=True)
    print(f"built {ITEMS} items × 3 labels in {time.perf_counter() - started:.1f} s")
    freeze = run_step("freeze", state)
    print(f"freeze: {freeze['items']} items in {freeze['seconds']:.2f} s, peak RSS {freeze['peak_rss_mb']:.0f} MB "
          f"(interpreter with Django: {freeze['base_rss_mb']:.0f} MB)")
    stats = run_step("stats", state)
    print(f"stats incl. bootstrap CIs: {stats['seconds']:.2f} s (α {stats['alpha']:.3f})")
    results = {}
    for fmt in ("jsonl", "parquet"):
        result = run_step(fmt, state)
        rate = result["items"] / result["export_seconds"]
        results[fmt] = (rate, result["raw_seconds"] / result["export_seconds"])
        print(f"export {fmt}: {result['items']} items in {result['export_seconds']:.2f} s ({rate:,.0f} items/s, "
              f"digest verified while writing); raw sqlite3 scan of the same rows {result['raw_seconds']:.2f} s; "
              f"peak RSS {result['peak_rss_mb']:.0f} MB")
    print(f"BENCH goldset_stats_seconds {stats['seconds']:.2f} s ratio={stats['seconds'] / 5:.2f} target=1.0")
    for fmt, (rate, ratio) in results.items():
        print(f"BENCH goldset_export_{fmt}_throughput {rate:.0f} items/s ratio={ratio:.2f} target=0.5")
    print(f"BENCH goldset_freeze_peak_rss {freeze['peak_rss_mb']:.0f} MB ratio={freeze['peak_rss_mb'] / 500:.2f} "
          "target=1.0")
    print(f"BENCH goldset_freeze_seconds {freeze['seconds']:.2f} s ratio={freeze['seconds'] / 10:.2f} target=1.0")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--build":
        setup_django(Path(sys.argv[2]))
        build(Path(sys.argv[2]))
    elif len(sys.argv) == 4 and sys.argv[1] == "--measure":
        setup_django(Path(sys.argv[3]))
        print(json.dumps(measure(sys.argv[2], Path(sys.argv[3]))))
    else:
        main()
