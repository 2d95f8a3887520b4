"""Prevalence estimators with confidence intervals (pure: no Django, no I/O).

Design-based, from human (or gold) labels on a probability sample:

- :func:`horvitz_thompson`: HT total ``Σ y_i/π_i`` and mean ``total/N``.
- :func:`hajek_mean` / :func:`hajek_mean_ci`: the ratio mean ``Σ (y_i/π_i) / Σ (1/π_i)``.
- :func:`stratified_prevalence`: ``p = Σ W_h p_h``, ``W_h = N_h/N``, with Cochran's (1977, ch. 5)
  ``se = sqrt(Σ W_h² (1 − n_h/N_h) p_h (1 − p_h) / (n_h − 1))``.

Variances of the πps (score-weighted) design use the Hansen–Hurwitz with-replacement
approximation: the n units are treated as n independent draws with probabilities π_i/n, so
``v(T̂) = n/(n − 1) Σ (y_i/π_i − T̂/n)²``. It ignores the finite-population correction and the
joint inclusion probabilities of systematic πps, and is conservative when the sampling fraction
is not small. Units with π_i = 1 (certainty units) are a census: they are taken out of the
variance sum (n counts only units with π_i < 1).

Model-assisted, prediction-powered inference (PPI; Angelopoulos et al. 2023, PPI++ 2023):
LLM labels ``yhat`` on the audited units and ``yhat_unlabeled`` on the sample's other units
(disjoint from the audit, as ppi-python assumes), human labels ``y`` on the audit, a simple
random subsample of the sample. :func:`ppi_mean` goes through ppi-python (estimate, λ; the interval
too unless the weights vary, where ppi-python's variance of ``w·x`` undercovers and the Hájek
linearisation is the default, see :func:`ppi_mean`); :func:`stratified_ppi_mean`
is stratified PPI (Fisch et al. 2024, "Stratified Prediction-Powered Inference for Hybrid Language
Model Evaluation"): PPI++ within each stratum with its own λ_h, combined with the stratum weights.

Confidence intervals, all at level 1 − ``alpha``:

- ``ci``: normal (Wald) interval ``estimate ± z·se``, every estimator. PPI intervals are ppi-python's
  (also Wald). Intervals are not clipped to [0, 1].
- ``ci_wilson`` (design-based estimators of a 0/1 prevalence): the Wilson score interval at Kish's
  effective sample size ``n* = p(1 − p)/se²`` (at most the number of labelled units; the number of
  labelled units when se = 0). Prefer it for rare prevalence: the Wald interval collapses to a point
  when no violation is in the sample and undercovers when few are.

Coverage (tests/stats/test_prevalence_coverage.py, benchmarks/prevalence_coverage.py): with
audits of 2,000 human labels at 0.5 %, 1,000 at 2 %, 500 at 20 %, the Wilson intervals and PPI
(λ = 1) hold 93 % in every design; Wald design-based intervals need about ten expected violations
per audited stratum; PPI++ (tuned λ) undercovers at rare prevalence (0.89-0.93) and is claimed at
20 % in a uniform sample only.

Effective sample size of PPI: ``n_eff = n · var_classical / var_ppi``, the number of human labels the
classical human-only estimator (λ = 0, same audit) would need to be as precise as PPI.

Input conventions: sequences of numbers (0/1 for prevalence); probabilities in (0, 1]; ``alpha`` in
(0, 1). Bad input raises ``ValueError`` naming the argument. The ``*_batch`` functions are the same
estimators vectorised over a leading replicate axis (no validation), for simulations.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from types import ModuleType

import numpy as np

Interval = tuple[float, float]
# PPI variance conventions: ppi-python's, and the Hájek linearisation for unequal weights.
VARIANCES = ("ppi-python", "linearised")


# --- validation and intervals -------------------------------------------------------------------


def _z(alpha: float) -> float:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: must be between 0 and 1, got {alpha!r}")
    return NormalDist().inv_cdf(1 - alpha / 2)


def _vector(name: str, values: Sequence[float] | np.ndarray, *, allow_empty: bool = False) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name}: must be one-dimensional, got shape {array.shape}")
    if array.size == 0 and not allow_empty:
        raise ValueError(f"{name}: empty input")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return array


def _values_and_probs(values, probs) -> tuple[np.ndarray, np.ndarray]:
    y = _vector("values", values)
    pi = _vector("probs", probs)
    if y.size != pi.size:
        raise ValueError(f"values and probs: unequal lengths ({y.size} and {pi.size})")
    bad = np.flatnonzero((pi <= 0) | (pi > 1))
    if bad.size:
        raise ValueError(
            f"probs: inclusion probabilities must be in (0, 1]; position {bad[0]} is {float(pi[bad[0]])!r}"
        )
    return y, pi


def _wald(estimate: float, se: float, z: float) -> Interval:
    return (estimate - z * se, estimate + z * se)


def wilson_interval(estimate: float, se: float, n: int, alpha: float = 0.05) -> Interval:
    """Wilson score interval for a proportion at Kish's effective sample size ``p(1 − p)/se²``.

    ``n`` (the number of labelled units) caps the effective size and replaces it when se = 0
    (then p is 0 or 1 and the Wald interval would be a point). Raises ValueError when the
    estimate is outside [0, 1] (the Wilson interval is for proportions).
    """
    if not 0 <= estimate <= 1:
        raise ValueError(f"estimate: a proportion must be in [0, 1], got {estimate!r}")
    low, high = wilson_batch(np.float64(estimate), np.float64(se), n, alpha)
    return (float(low), float(high))


def wilson_batch(p: np.ndarray, se: np.ndarray, n, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """:func:`wilson_interval` elementwise over arrays (no validation)."""
    z = _z(alpha)
    variance = p * (1 - p)
    with np.errstate(divide="ignore", invalid="ignore"):
        n_star = np.where((se > 0) & (variance > 0), np.minimum(n, variance / se**2), n)
    z2 = z * z
    centre = (p + z2 / (2 * n_star)) / (1 + z2 / n_star)
    half = z / (1 + z2 / n_star) * np.sqrt(p * (1 - p) / n_star + z2 / (4 * n_star**2))
    # Exactly 0 (1) at p = 0 (1), and inside [0, 1]: clipping removes rounding.
    low = np.where(p <= 0, 0.0, np.clip(centre - half, 0.0, 1.0))
    return low, np.where(p >= 1, 1.0, np.clip(centre + half, 0.0, 1.0))


def _is_binary(y: np.ndarray) -> bool:
    return bool(np.all((y == 0) | (y == 1)))


# --- Horvitz–Thompson and Hájek -----------------------------------------------------------------


def _hh_variance(z: np.ndarray, random: np.ndarray) -> np.ndarray:
    """Hansen–Hurwitz variance of ``Σ z_i`` over the last axis, certainty units (``random`` False) out."""
    m = random.sum(-1)
    zr = np.where(random, z, 0.0)
    mean = zr.sum(-1, keepdims=True) / np.maximum(m, 1)[..., None]
    squares = (np.where(random, z - mean, 0.0) ** 2).sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(m >= 2, m / np.maximum(m - 1, 1) * squares, np.where(m == 0, 0.0, np.nan))


def horvitz_thompson_batch(y: np.ndarray, pi: np.ndarray, N: float | np.ndarray) -> dict[str, np.ndarray]:
    """HT total and mean with their HH standard errors over the last axis (no validation)."""
    expanded = y / pi
    total = expanded.sum(-1)
    se_total = np.sqrt(_hh_variance(expanded, pi < 1))
    return {"total": total, "se_total": se_total, "mean": total / N, "se_mean": se_total / N}


def hajek_batch(y: np.ndarray, pi: np.ndarray) -> dict[str, np.ndarray]:
    """Hájek mean and its linearised HH standard error over the last axis (no validation)."""
    n_hat = (1 / pi).sum(-1)
    mean = (y / pi).sum(-1) / n_hat
    residual = (y - mean[..., None]) / pi / n_hat[..., None]
    return {"estimate": mean, "se": np.sqrt(_hh_variance(residual, pi < 1)), "N_hat": n_hat}


def _se_or_none(se: float) -> float | None:
    return None if math.isnan(se) else se


def horvitz_thompson(values, probs, N: float | None = None, *, alpha: float = 0.05) -> dict:
    """Horvitz–Thompson total ``Σ y_i/π_i`` and mean ``total/N`` of a probability sample.

    ``values`` are the sampled units' y_i, ``probs`` their first-order inclusion probabilities
    π_i in (0, 1]. ``N`` is the population size; when None the mean is divided by
    ``N̂ = Σ 1/π_i`` instead, which makes it the Hájek mean, and its SE is the Hájek one.
    Standard errors use the Hansen–Hurwitz with-replacement approximation (module docstring);
    they are None when fewer than two units have π_i < 1 but some do (no variance estimate).
    Returns ``{"total", "mean", "se_total", "se_mean", "ci_total", "ci_mean", "n", "N"}`` and,
    for 0/1 values, ``"ci_mean_wilson"``. Raises ValueError on empty input, unequal lengths,
    probabilities outside (0, 1], or N not positive.
    """
    y, pi = _values_and_probs(values, probs)
    z = _z(alpha)
    if N is not None and not N > 0:
        raise ValueError(f"N: the population size must be positive, got {N!r}")
    ht = horvitz_thompson_batch(y, pi, 1.0)
    total, se_total = float(ht["total"]), _se_or_none(float(ht["se_total"]))
    if N is None:
        hajek = hajek_batch(y, pi)
        population, mean, se_mean = float(hajek["N_hat"]), float(hajek["estimate"]), _se_or_none(float(hajek["se"]))
    else:
        population, mean = float(N), total / N
        se_mean = None if se_total is None else se_total / N
    result = {
        "total": total,
        "mean": mean,
        "se_total": se_total,
        "se_mean": se_mean,
        "ci_total": None if se_total is None else _wald(total, se_total, z),
        "ci_mean": None if se_mean is None else _wald(mean, se_mean, z),
        "n": int(y.size),
        "N": population,
    }
    if _is_binary(y) and se_mean is not None and 0 <= mean <= 1:
        result["ci_mean_wilson"] = wilson_interval(mean, se_mean, y.size, alpha)
    return result


def hajek_mean(values, probs) -> float:
    """Hájek ratio mean ``Σ (y_i/π_i) / Σ (1/π_i)``: the prevalence when N is not used.

    Raises ValueError on empty input, unequal lengths, probabilities outside (0, 1].
    """
    y, pi = _values_and_probs(values, probs)
    return float(hajek_batch(y, pi)["estimate"])


def hajek_mean_ci(values, probs, *, alpha: float = 0.05) -> dict:
    """Hájek mean with its linearised Hansen–Hurwitz SE and intervals.

    The SE is that of ``Σ e_i/π_i`` with ``e_i = (y_i − ȳ)/N̂`` under the with-replacement
    approximation, certainty units out (module docstring); None when it cannot be estimated.
    Returns ``{"estimate", "se", "ci", "n"}`` and, for 0/1 values, ``"ci_wilson"``. Raises as
    :func:`hajek_mean`.
    """
    y, pi = _values_and_probs(values, probs)
    z = _z(alpha)
    hajek = hajek_batch(y, pi)
    estimate, se = float(hajek["estimate"]), _se_or_none(float(hajek["se"]))
    result = {"estimate": estimate, "se": se, "ci": None if se is None else _wald(estimate, se, z), "n": int(y.size)}
    if _is_binary(y) and se is not None:
        result["ci_wilson"] = wilson_interval(estimate, se, y.size, alpha)
    return result


# --- stratified prevalence ----------------------------------------------------------------------


def stratified_prevalence_batch(
    N_h: np.ndarray, n_h: np.ndarray, y_h: np.ndarray, fpc: bool = True
) -> dict[str, np.ndarray]:
    """Stratified prevalence and Cochran's SE over the last (strata) axis (no validation)."""
    N_h, n_h, y_h = (np.asarray(a, dtype=np.float64) for a in (N_h, n_h, y_h))
    weights = N_h / N_h.sum(-1, keepdims=True)
    p_h = y_h / n_h
    census = n_h >= N_h
    factor = 1 - n_h / N_h if fpc else np.ones_like(p_h)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(census, 0.0, weights**2 * factor * p_h * (1 - p_h) / (n_h - 1))
    return {"estimate": (weights * p_h).sum(-1), "se": np.sqrt(terms.sum(-1)), "n": n_h.sum(-1)}


def _count(stratum: Mapping, key: str, index: int) -> int:
    if key not in stratum:
        raise ValueError(f"strata[{index}]: missing {key!r}")
    value = stratum[key]
    if isinstance(value, bool) or not float(value).is_integer():
        raise ValueError(f"strata[{index}]: {key} must be a whole number, got {value!r}")
    return int(value)


def stratified_prevalence(strata: Sequence[Mapping], fpc: bool = True, *, alpha: float = 0.05) -> dict:
    """Prevalence from a stratified simple random sample: ``p = Σ W_h p_h``, ``W_h = N_h/N``.

    ``strata`` is ``[{"N_h": stratum size, "n_h": labelled units, "y_h": violating units}]``.
    ``se = sqrt(Σ W_h² (1 − n_h/N_h) p_h (1 − p_h) / (n_h − 1))`` (Cochran 1977, eq. 5.48 with
    the sample variance ``n_h p_h q_h/(n_h − 1)``); ``fpc=False`` drops ``(1 − n_h/N_h)``. A census
    stratum (n_h = N_h) is known exactly and adds no variance either way. Returns
    ``{"estimate", "se", "ci", "ci_wilson", "n", "N"}``. Raises ValueError on no strata, a missing
    or non-integer count, N_h < 1, n_h < 2 in a sampled stratum (n_h < N_h), n_h > N_h, y_h < 0
    or y_h > n_h.
    """
    z = _z(alpha)
    if not strata:
        raise ValueError("strata: empty input")
    counts = []
    for index, stratum in enumerate(strata):
        N, n, y = (_count(stratum, key, index) for key in ("N_h", "n_h", "y_h"))
        if N < 1:
            raise ValueError(f"strata[{index}]: N_h must be at least 1, got {N}")
        if n > N:
            raise ValueError(f"strata[{index}]: n_h ({n}) exceeds N_h ({N})")
        if n < 2 and n < N:
            raise ValueError(f"strata[{index}]: n_h must be at least 2 in a sampled stratum, got {n}")
        if not 0 <= y <= n:
            raise ValueError(f"strata[{index}]: y_h ({y}) must be between 0 and n_h ({n})")
        counts.append((N, n, y))
    N_h, n_h, y_h = (np.array(column, dtype=np.float64) for column in zip(*counts, strict=True))
    result = stratified_prevalence_batch(N_h, n_h, y_h, fpc)
    estimate, se = float(result["estimate"]), float(result["se"])
    return {
        "estimate": estimate,
        "se": se,
        "ci": _wald(estimate, se, z),
        "ci_wilson": wilson_interval(estimate, se, int(n_h.sum()), alpha),
        "n": int(n_h.sum()),
        "N": int(N_h.sum()),
    }


# --- prediction-powered inference ---------------------------------------------------------------


def _ppi_py() -> ModuleType:
    # Imported on first use: ppi_py pulls in numba, scikit-learn and statsmodels (seconds), and
    # sets a process-wide "ignore all warnings" filter on import, which catch_warnings undoes.
    with warnings.catch_warnings():
        import ppi_py
    return ppi_py


def _normalised(weights: np.ndarray | None, like: np.ndarray) -> np.ndarray:
    # ppi-python's construct_weight_vector: weights rescaled to mean 1 within each set.
    if weights is None:
        return np.ones_like(like)
    return weights / weights.sum(-1, keepdims=True) * like.shape[-1]


def ppi_lambda_batch(y, yhat, yhat_unlabeled, w=None, w_unlabeled=None) -> np.ndarray:
    """PPI++ λ exactly as ppi-python's ``ppi_mean_ci(lam=None)`` computes it, over the last axis.

    ``λ = 2·cov(g, ĝ) / (2 (1 + n/N) var(ĝ ∪ ĝ_u))`` clipped to [0, 1], with gradients
    ``g = w (y − θ)``, ``ĝ = w (ŷ − θ)`` at the λ = 1 estimate θ, cov with divisor n and var
    with divisor n + N − 1 (numpy's cov). Where ŷ is constant (var(ĝ) ≤ 1e-12 of its mean
    square), ppi-python's λ is 0/0 (NaN, or rounding noise) and here λ = 0. An empty unlabelled
    set gives λ = 0.
    """
    y, yhat, yhat_unlabeled = (np.asarray(a, dtype=np.float64) for a in (y, yhat, yhat_unlabeled))
    n, m = y.shape[-1], yhat_unlabeled.shape[-1]
    if m == 0:
        return np.zeros(y.shape[:-1])
    w = _normalised(w, y)
    wu = _normalised(w_unlabeled, yhat_unlabeled)
    theta = (wu * yhat_unlabeled).mean(-1, keepdims=True) + (w * (y - yhat)).mean(-1, keepdims=True)
    g, gh, ghu = w * (y - theta), w * (yhat - theta), wu * (yhat_unlabeled - theta)
    cov = 2 * ((g - g.mean(-1, keepdims=True)) * (gh - gh.mean(-1, keepdims=True))).sum(-1) / n
    pooled = np.concatenate([gh, ghu], axis=-1)
    var = ((pooled - pooled.mean(-1, keepdims=True)) ** 2).sum(-1) / (n + m - 1)
    # Constant ŷ: var is 0 up to rounding, and λ would be rounding noise over rounding noise.
    constant = var <= 1e-12 * (pooled**2).mean(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = np.where(constant, 0.0, cov / (2 * (1 + n / m) * var))
    return np.clip(lam, 0.0, 1.0)


def _set_variance(values: np.ndarray, weights: np.ndarray, linearised: bool) -> np.ndarray:
    # ppi-python: the population variance of w·x. Linearised: of w·(x − x̄_w), the Hájek mean's
    # influence values (the same when the weights are equal).
    if not linearised:
        return (weights * values).var(-1)
    centred = values - (weights * values).mean(-1, keepdims=True)
    return ((weights * centred) ** 2).mean(-1)


def ppi_mean_batch(
    y, yhat, yhat_unlabeled, lam, w=None, w_unlabeled=None, variance: str = "ppi-python"
) -> dict[str, np.ndarray]:
    """PPI estimate and SE at a given λ over the last axis, as ppi-python's ppi_mean_ci computes them.

    ``θ̂ = mean(w_u λ ŷ_u) + mean(w (y − λ ŷ))``, ``se² = var(w_u λ ŷ_u)/N + var(w (y − λ ŷ))/n``
    with population variances (divisor N, n) and weights normalised to mean 1 in each set;
    ``variance="linearised"`` centres each term on its weighted mean first (see :func:`ppi_mean`).
    ``lam`` broadcasts against the leading axes; λ = 0 is the classical estimate on the audit.
    """
    linearised = _variance_mode(variance)
    y, yhat, yhat_unlabeled = (np.asarray(a, dtype=np.float64) for a in (y, yhat, yhat_unlabeled))
    lam = np.asarray(lam, dtype=np.float64)[..., None]
    w = _normalised(w, y)
    rectifier = y - lam * yhat
    estimate = (w * rectifier).mean(-1)
    var = _set_variance(rectifier, w, linearised) / y.shape[-1]
    if yhat_unlabeled.shape[-1]:
        wu = _normalised(w_unlabeled, yhat_unlabeled)
        imputed = lam * yhat_unlabeled
        estimate = estimate + (wu * imputed).mean(-1)
        var = var + _set_variance(imputed, wu, linearised) / yhat_unlabeled.shape[-1]
    return {"estimate": estimate, "se": np.sqrt(var)}


def _variance_mode(variance: str) -> bool:
    if variance not in VARIANCES:
        raise ValueError(f"variance: must be one of {', '.join(VARIANCES)}, not {variance!r}")
    return variance == "linearised"


def _effective_n(n: int, se_classical: float, se_ppi: float) -> float | None:
    return None if se_ppi <= 0 else n * se_classical**2 / se_ppi**2


def _ppi_inputs(y, yhat, yhat_unlabeled, w, w_unlabeled, *, where: str = ""):
    y = _vector(f"{where}y", y)
    yhat = _vector(f"{where}yhat", yhat)
    yhat_unlabeled = _vector(f"{where}yhat_unlabeled", yhat_unlabeled, allow_empty=bool(where))
    if y.size != yhat.size:
        raise ValueError(f"{where}y and yhat: unequal lengths ({y.size} and {yhat.size})")
    if y.size < 2:
        raise ValueError(f"{where}y: at least two human labels are needed, got {y.size}")
    weights = []
    for name, weight, like in (("w", w, y), ("w_unlabeled", w_unlabeled, yhat_unlabeled)):
        if weight is not None:
            weight = _vector(f"{where}{name}", weight, allow_empty=True)
            if weight.size != like.size:
                raise ValueError(f"{where}{name}: length {weight.size}, expected {like.size}")
            if np.any(weight <= 0):
                raise ValueError(f"{where}{name}: weights must be positive")
        weights.append(weight)
    return y, yhat, yhat_unlabeled, weights[0], weights[1]


def ppi_mean(
    y,
    yhat,
    yhat_unlabeled,
    alpha: float = 0.05,
    power_tuning: bool = False,
    *,
    w=None,
    w_unlabeled=None,
    variance: str = "linearised",
) -> dict:
    """Prediction-powered mean (prevalence) through ppi-python, beside the classical interval.

    ``y``: human labels on the audit; ``yhat``: the LLM's labels (or scores) on the same units;
    ``yhat_unlabeled``: the LLM's labels on the sample's other units (disjoint from the audit).
    ``power_tuning=False`` is PPI (λ = 1); True is PPI++ with λ as ``ppi_mean_ci(lam=None)``
    computes it (see :func:`ppi_lambda_batch`). The estimate is
    ``ppi_py.ppi_mean_pointestimate`` at that λ.

    ``w`` / ``w_unlabeled``: sampling weights 1/π_i. ppi-python normalises each set to mean 1
    (a Hájek-type mean) and takes the variance of ``w_i·x_i``, which leaves out the centring of
    the Hájek linearisation; under a score-weighted design that interval undercovers (0.68 at
    20 % prevalence, tests/stats/test_prevalence_coverage.py). ``variance="linearised"`` (the
    default) uses the variance of ``w_i·(x_i − x̄_w)`` instead; ``variance="ppi-python"`` is
    ``ppi_py.ppi_mean_ci`` / ``classical_mean_ci`` exactly. Without weights, or with equal
    ones, the two are the same and the interval is ppi-python's.

    Intervals are Wald. Returns ``{"estimate", "ci", "lam", "se", "n", "N_unlabeled",
    "classical": {"estimate", "se", "ci"}, "n_eff"}``; classical is λ = 0, the human labels
    alone; ``n_eff = n · var_classical / var_ppi`` (None when var_ppi = 0). Raises ValueError on
    empty or unequal inputs, fewer than two human labels, non-positive weights, an unknown
    variance, alpha outside (0, 1).
    """
    z = _z(alpha)
    linearised = _variance_mode(variance)
    y, yhat, yhat_unlabeled, w, w_unlabeled = _ppi_inputs(y, yhat, yhat_unlabeled, w, w_unlabeled)
    lam = float(ppi_lambda_batch(y, yhat, yhat_unlabeled, w, w_unlabeled)) if power_tuning else 1.0
    ppi_py = _ppi_py()
    options = {"lam": lam, "w": w, "w_unlabeled": w_unlabeled}
    estimate = float(np.ravel(ppi_py.ppi_mean_pointestimate(y, yhat, yhat_unlabeled, **options))[0])
    classical_estimate = float(ppi_mean_batch(y, yhat, yhat_unlabeled, 0.0, w, w_unlabeled)["estimate"])
    if linearised and (w is not None or w_unlabeled is not None):
        se = float(ppi_mean_batch(y, yhat, yhat_unlabeled, lam, w, w_unlabeled, variance)["se"])
        classical_se = float(ppi_mean_batch(y, yhat, yhat_unlabeled, 0.0, w, w_unlabeled, variance)["se"])
        ci, classical_ci = _wald(estimate, se, z), _wald(classical_estimate, classical_se, z)
    else:
        bounds = ppi_py.ppi_mean_ci(y, yhat, yhat_unlabeled, alpha, **options)
        ci = tuple(float(np.ravel(bound)[0]) for bound in bounds)
        classical_ci = tuple(float(np.ravel(bound)[0]) for bound in ppi_py.classical_mean_ci(y, w=w, alpha=alpha))
        se, classical_se = (ci[1] - ci[0]) / (2 * z), (classical_ci[1] - classical_ci[0]) / (2 * z)
    return {
        "estimate": estimate,
        "ci": ci,
        "lam": lam,
        "se": se,
        "n": int(y.size),
        "N_unlabeled": int(yhat_unlabeled.size),
        "classical": {"estimate": classical_estimate, "se": classical_se, "ci": classical_ci},
        "n_eff": _effective_n(y.size, classical_se, se),
    }


def stratified_ppi_batch(strata: Sequence[Mapping], power_tuning: bool = True) -> dict:
    """:func:`stratified_ppi_mean` over a leading replicate axis (no validation).

    Each stratum holds ``"W_h"`` (its population share) and 2-D ``"y"``, ``"yhat"``,
    ``"yhat_unlabeled"`` (replicates × units). Returns the PPI(++) and classical estimates and
    SEs and, per stratum, λ_h, estimate and SE.
    """
    combined = {"estimate": 0.0, "variance": 0.0, "classical_estimate": 0.0, "classical_variance": 0.0}
    per_stratum = []
    for stratum in strata:
        y, yhat, unlabeled, W = stratum["y"], stratum["yhat"], stratum["yhat_unlabeled"], stratum["W_h"]
        replicates = np.shape(y)[:-1]
        if np.shape(unlabeled)[-1] == 0:
            lam = np.zeros(replicates)
        else:
            lam = ppi_lambda_batch(y, yhat, unlabeled) if power_tuning else np.ones(replicates)
        ppi = ppi_mean_batch(y, yhat, unlabeled, lam)
        classical = ppi_mean_batch(y, yhat, unlabeled, np.zeros(replicates))
        combined["estimate"] = combined["estimate"] + W * ppi["estimate"]
        combined["variance"] = combined["variance"] + W**2 * ppi["se"] ** 2
        combined["classical_estimate"] = combined["classical_estimate"] + W * classical["estimate"]
        combined["classical_variance"] = combined["classical_variance"] + W**2 * classical["se"] ** 2
        per_stratum.append({"lam": lam, "estimate": ppi["estimate"], "se": ppi["se"]})
    return {
        "estimate": combined["estimate"],
        "se": np.sqrt(combined["variance"]),
        "classical_estimate": combined["classical_estimate"],
        "classical_se": np.sqrt(combined["classical_variance"]),
        "strata": per_stratum,
    }


def stratified_ppi_mean(strata: Sequence[Mapping], alpha: float = 0.05, power_tuning: bool = True) -> dict:
    """Stratified prediction-powered mean (Fisch et al. 2024), with the classical stratified one.

    ``strata`` is ``[{"N_h": stratum size in the population, "y": human labels on the stratum's
    audit, "yhat": LLM labels on them, "yhat_unlabeled": LLM labels on the stratum's other
    sampled units}]``. Within stratum h, PPI++ as :func:`ppi_mean` computes it (unweighted,
    ppi-python's population variances): ``θ̂_h = λ_h mean(ŷ_u) + mean(y − λ_h ŷ)``, λ_h tuned
    on the stratum alone (``power_tuning=False``: λ_h = 1; an empty ``yhat_unlabeled``:
    λ_h = 0, the classical stratum mean). Combined: ``θ̂ = Σ W_h θ̂_h``, ``se² = Σ W_h² se_h²``,
    ``W_h = N_h/N``; the variance is a sum over strata, so the per-stratum λ_h minimise it. The
    classical estimate is the same with every λ_h = 0. No finite-population correction
    (conservative). Returns ``{"estimate", "se", "ci", "lam": [λ_h], "n", "classical":
    {"estimate", "se", "ci"}, "n_eff", "strata": [{"estimate", "se", "lam", "n", "N_unlabeled"}]}``.
    Raises ValueError on no strata, a missing key, N_h < 1, fewer than two human labels in a
    stratum, unequal y and yhat, alpha outside (0, 1).
    """
    z = _z(alpha)
    if not strata:
        raise ValueError("strata: empty input")
    checked, sizes = [], []
    for index, stratum in enumerate(strata):
        N = _count(stratum, "N_h", index)
        if N < 1:
            raise ValueError(f"strata[{index}]: N_h must be at least 1, got {N}")
        for key in ("y", "yhat", "yhat_unlabeled"):
            if key not in stratum:
                raise ValueError(f"strata[{index}]: missing {key!r}")
        y, yhat, unlabeled, _, _ = _ppi_inputs(
            stratum["y"], stratum["yhat"], stratum["yhat_unlabeled"], None, None, where=f"strata[{index}]."
        )
        checked.append({"y": y[None, :], "yhat": yhat[None, :], "yhat_unlabeled": unlabeled[None, :]})
        sizes.append((N, y.size, unlabeled.size))
    total = sum(size[0] for size in sizes)
    for stratum, size in zip(checked, sizes, strict=True):
        stratum["W_h"] = size[0] / total
    result = stratified_ppi_batch(checked, power_tuning)
    estimate, se = float(result["estimate"][0]), float(result["se"][0])
    classical_estimate, classical_se = float(result["classical_estimate"][0]), float(result["classical_se"][0])
    n = sum(size[1] for size in sizes)
    return {
        "estimate": estimate,
        "se": se,
        "ci": _wald(estimate, se, z),
        "lam": [float(row["lam"][0]) for row in result["strata"]],
        "n": n,
        "classical": {
            "estimate": classical_estimate,
            "se": classical_se,
            "ci": _wald(classical_estimate, classical_se, z),
        },
        "n_eff": _effective_n(n, classical_se, se),
        "strata": [
            {
                "estimate": float(row["estimate"][0]),
                "se": float(row["se"][0]),
                "lam": float(row["lam"][0]),
                "n": size[1],
                "N_unlabeled": size[2],
            }
            for row, size in zip(result["strata"], sizes, strict=True)
        ],
    }
