"""Coverage table of the prevalence intervals (issue 15), for the README.

Runs the simulation of tests/stats/test_prevalence_coverage.py (1,000 draws per design and
scenario) and prints, per estimator and scenario, the share of nominal 95 % intervals that cover
the population prevalence and their mean width; an asterisk marks a cell outside the range the
estimator is claimed for. The last line is the BENCH line: the lowest claimed coverage.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.stats.test_prevalence_coverage import (  # noqa: E402
    AUDIT,
    POPULATION,
    REPLICATES,
    SAMPLE,
    claimed,
    coverage_table,
    format_table,
)


def main() -> None:
    start = time.perf_counter()
    table = coverage_table()
    seconds = time.perf_counter() - start
    print(
        f"{REPLICATES} draws per cell; population {POPULATION:,}, LLM-labelled sample {SAMPLE:,}, "
        f"human audit {', '.join(f'{n:,} at {p:.1%}' for p, n in AUDIT.items())}; {seconds:.1f} s\n"
    )
    print(format_table(table))
    lowest = min(
        row["coverage"]
        for (prevalence, _), rows in table.items()
        for name, row in rows.items()
        if claimed(name, prevalence)
    )
    print(f"\nBENCH prevalence_coverage {lowest:.3f} min_claimed_coverage ratio={lowest / 0.93:.3f} target=0.93")


if __name__ == "__main__":
    main()
