"""Bootstrap CIs of an evaluation: 1,000 resamples over 100,000 scored gold items.

Measures ``stats.evaluation_ci.bootstrap_score_metrics`` (F1, precision, recall, FPR at a
threshold, AUPRC, ROC AUC, recall at FPR 1 %) and, on the same items, the paired comparison
``stats.comparison.paired_bootstrap`` of two signals (issue 14: each < 5 s).

The ratio is against a reference run of the same work in this process, done the obvious
way: one scikit-learn pass (``f1_score``, ``average_precision_score``, ``roc_auc_score``) per
resample, timed on a few resamples and scaled to 1,000. ratio = bootstrap time / reference
time, lower is better; the target bounds it at a tenth. The absolute target (5 s) is in the
line before the last.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score  # noqa: E402

from stats.comparison import paired_bootstrap  # noqa: E402
from stats.evaluation_ci import bootstrap_score_metrics  # noqa: E402

ITEMS = int(os.environ.get("BENCH_EVALUATION_ITEMS", "100000"))
RESAMPLES = 1000
REFERENCE_RESAMPLES = 5


def main() -> None:
    rng = np.random.default_rng(0)
    truth = rng.random(ITEMS) < 0.2
    # continuous scores, every one distinct: the most work per resample (no ties to merge)
    scores = 1 / (1 + np.exp(-rng.normal(-1.0 + 2.0 * truth, 1.0)))
    other = 1 / (1 + np.exp(-rng.normal(-1.2 + 2.4 * truth, 1.0)))

    start = time.perf_counter()
    result = bootstrap_score_metrics(truth, scores, threshold=0.5, max_fpr=0.01, n_resamples=RESAMPLES, seed=0)
    measured = time.perf_counter() - start

    start = time.perf_counter()
    paired_bootstrap(truth, scores, other, threshold_a=0.5, threshold_b=0.5, max_fpr=0.01,
                     n_resamples=RESAMPLES, seed=0)
    paired = time.perf_counter() - start

    start = time.perf_counter()
    for _ in range(REFERENCE_RESAMPLES):
        drawn = rng.integers(0, ITEMS, ITEMS)
        y, s = truth[drawn], scores[drawn]
        f1_score(y, s >= 0.5)
        average_precision_score(y, s)
        roc_auc_score(y, s)
    reference = (time.perf_counter() - start) / REFERENCE_RESAMPLES * RESAMPLES

    ratio = measured / reference
    for name in ("f1", "average_precision", "roc_auc", "recall_at_fpr"):
        row = result[name]
        print(f"{name}: {row['value']:.4f} [{row['ci_low']:.4f}, {row['ci_high']:.4f}]")
    print(f"{RESAMPLES} resamples of {ITEMS} items: bootstrap {measured:.2f} s, paired comparison {paired:.2f} s; "
          f"scikit-learn once per resample would take {reference:.1f} s")
    print(f"BENCH evaluation_paired_bootstrap {paired:.2f} s ratio={paired / 5:.2f} target=1.0")
    print(f"BENCH evaluation_bootstrap {measured:.2f} s ratio={ratio:.3f} target=0.1")


if __name__ == "__main__":
    main()
