"""Two versions of a score signal and two of a label signal on the 200-item frozen golden set
of tests/evaluation/evaluations, each version missing a few items."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.services import signal_scores_add, signal_version_create
from tests.evaluation.evaluations.conftest import (  # noqa: F401  (fixtures)
    TAXONOMY,
    VIOLATING,
    goldset,
    goldset_rows,
    random_gold,
)

N = 200
MISSING_A = {7, 50}  # gold items version A never scored
MISSING_B = {0, 7}  # ... and version B: 7 by neither, 50 by B only, 0 by A only


def score_arrays():
    """Scores of A and B on the 200 items: B is A with extra signal and noise."""
    gold, _, scores_a = random_gold(N)
    truth = np.isin(gold, list(VIOLATING))
    rng = np.random.default_rng(5)
    scores_b = np.clip(np.round(scores_a + 0.15 * truth - 0.05 + rng.normal(0, 0.1, N), 3), 0, 1)
    return gold, scores_a, scores_b


def label_arrays():
    """Labels of A (right 70 % of the time) and B (right 80 %), else a random other label."""
    gold, _, _ = random_gold(N)
    rng = np.random.default_rng(9)
    out = []
    for share in (0.7, 0.8):
        right = rng.uniform(size=N) < share
        other = rng.choice(TAXONOMY, size=N)
        out.append([g if r else o for g, r, o in zip(gold, right, other, strict=True)])
    return gold, out[0], out[1]


def _rows(values, missing, key):
    return [{"source": "g", "external_id": f"e{i:03d}", key: v if key == "label" else float(v)}
            for i, v in enumerate(values) if i not in missing]


@pytest.fixture
def score_pair(goldset, score_version, ops):  # noqa: F811  (the imported fixture)
    _, a, b = score_arrays()
    second = signal_version_create(signal=score_version.signal, notes="retrained", acting_user=ops)
    signal_scores_add(version=score_version, rows=_rows(a, MISSING_A, "score"), acting_user=ops)
    signal_scores_add(version=second, rows=_rows(b, MISSING_B, "score"), acting_user=ops)
    return score_version, second


@pytest.fixture
def label_pair(goldset, label_version, ops):  # noqa: F811
    _, a, b = label_arrays()
    second = signal_version_create(signal=label_version.signal, notes="new prompt", acting_user=ops)
    signal_scores_add(version=label_version, rows=_rows(a, MISSING_A, "label"), acting_user=ops)
    signal_scores_add(version=second, rows=_rows(b, MISSING_B, "label"), acting_user=ops)
    return label_version, second
