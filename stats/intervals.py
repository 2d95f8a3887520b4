"""Confidence intervals for a binomial proportion (pure: no Django, no I/O).

Conventions
-----------
- ``successes`` out of ``n`` trials, integers with 0 <= successes <= n; ``confidence`` in
  (0, 1), two-sided. Anything else raises ValueError.
- n = 0 is a 0/0 proportion: the interval is undefined, ``(None, None)``, never NaN.
- Wilson: the score interval *without* continuity correction, with the exact normal
  quantile z = Φ⁻¹(1 − α/2) (scipy's ``ndtri``, not 1.96).
- Clopper–Pearson: beta quantiles, lower = B(α/2; x, n − x + 1), upper = B(1 − α/2; x + 1,
  n − x), and exactly 0 at x = 0 and exactly 1 at x = n.

Both agree with statsmodels' ``proportion_confint`` (``"wilson"``, ``"beta"``) and with
Newcombe (1998); the tests check them.
"""

from __future__ import annotations

import math

from scipy.special import betaincinv, ndtri

Interval = tuple[float | None, float | None]


def _check(successes: int, n: int, confidence: float) -> None:
    if int(successes) != successes or int(n) != n:
        raise ValueError(f"successes and n must be integers, not {successes!r} and {n!r}")
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: must be between 0 and 1, not {confidence!r}")


def normal_quantile(confidence: float) -> float:
    """z such that a standard normal lies in (−z, z) with probability ``confidence``."""
    return float(ndtri(1.0 - (1.0 - confidence) / 2.0))


def wilson(successes: int, n: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval for successes / n, no continuity correction (Wilson 1927;
    Newcombe 1998 method 3). ``(None, None)`` when n = 0."""
    _check(successes, n, confidence)
    if n == 0:
        return None, None
    z = normal_quantile(confidence)
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # the bounds are exact at the edges: rounding must not move them past 0 or 1
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def clopper_pearson(successes: int, n: int, confidence: float = 0.95) -> Interval:
    """Clopper–Pearson "exact" interval from beta quantiles (Clopper & Pearson 1934;
    Newcombe 1998 method 5): 0 exactly at x = 0, 1 exactly at x = n. ``(None, None)`` when n = 0."""
    _check(successes, n, confidence)
    if n == 0:
        return None, None
    tail = (1.0 - confidence) / 2.0
    low = 0.0 if successes == 0 else float(betaincinv(successes, n - successes + 1, tail))
    high = 1.0 if successes == n else float(betaincinv(successes + 1, n - successes, 1.0 - tail))
    return low, high


__all__ = ["Interval", "clopper_pearson", "normal_quantile", "wilson"]
