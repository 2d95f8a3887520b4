"""Calibration of scores and confidences (pure).

Conventions
-----------
- ``y_true`` booleans (the event: "violating", or "the signal's label was right" when
  calibrating a confidence), ``probabilities`` in [0, 1] (outside: ValueError).
- Bins as scikit-learn's ``calibration_curve``: ``"uniform"`` has equal-width edges
  0, 1/m, …, 1; ``"quantile"`` (equal mass) has the probabilities' percentiles as edges,
  so bins hold about n/m items each (ties can merge bins). An item goes to the bin whose
  upper edge is the first edge >= its probability (edges belong to the bin below them).
- ECE = Σ_b (n_b / n) · |observed rate_b − mean probability_b| over non-empty bins.
- Brier score = mean (p − y)².
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from .evaluation import as_truth

Strategy = Literal["uniform", "quantile"]


def _inputs(y_true: Sequence, probabilities: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    truth = as_truth(y_true)
    values = np.asarray(probabilities, dtype=np.float64)
    if values.shape != truth.shape:
        raise ValueError(f"probabilities: {values.size} values for {truth.size} items")
    if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
        raise ValueError("probabilities: every value must be in [0, 1]")
    return truth, values


def _edges(values: np.ndarray, n_bins: int, strategy: Strategy) -> np.ndarray:
    if n_bins < 1:
        raise ValueError("n_bins: at least 1")
    if strategy == "uniform":
        return np.linspace(0.0, 1.0, n_bins + 1)
    if strategy == "quantile":
        # linspace(0, 1) * 100, not linspace(0, 100): the same edges as scikit-learn to the last bit
        return np.percentile(values, np.linspace(0, 1, n_bins + 1) * 100)
    raise ValueError(f"strategy: 'uniform' or 'quantile', not {strategy!r}")


def reliability_diagram(
    y_true: Sequence, probabilities: Sequence[float], n_bins: int = 10, strategy: Strategy = "uniform"
) -> list[dict]:
    """One row per bin: ``{"low", "high", "count", "mean_probability", "observed_rate"}``;
    an empty bin has count 0 and None for its means (0/0)."""
    truth, values = _inputs(y_true, probabilities)
    edges = _edges(values, n_bins, strategy)
    bins = np.searchsorted(edges[1:-1], values)
    count = np.bincount(bins, minlength=n_bins)
    total = np.bincount(bins, weights=values, minlength=n_bins)
    hits = np.bincount(bins, weights=truth.astype(np.float64), minlength=n_bins)
    return [
        {
            "low": float(edges[b]),
            "high": float(edges[b + 1]),
            "count": int(count[b]),
            "mean_probability": float(total[b] / count[b]) if count[b] else None,
            "observed_rate": float(hits[b] / count[b]) if count[b] else None,
        }
        for b in range(n_bins)
    ]


def expected_calibration_error(
    y_true: Sequence, probabilities: Sequence[float], n_bins: int = 10, strategy: Strategy = "uniform"
) -> float:
    """ECE with ``n_bins`` equal-width (``"uniform"``) or equal-mass (``"quantile"``) bins."""
    rows = reliability_diagram(y_true, probabilities, n_bins, strategy)
    n = sum(row["count"] for row in rows)
    return float(sum(row["count"] / n * abs(row["observed_rate"] - row["mean_probability"])
                     for row in rows if row["count"]))


def brier_score(y_true: Sequence, probabilities: Sequence[float]) -> float:
    """Mean squared difference between probability and outcome (0 is perfect)."""
    truth, values = _inputs(y_true, probabilities)
    return float(np.mean((values - truth) ** 2))


__all__ = ["brier_score", "expected_calibration_error", "reliability_diagram"]
