"""Prevalence from a labeling run's routed human labels: the two-phase combination. Pure: numpy and
``stats.prevalence`` only, no Django.

The data
--------
Phase 1 is the probability sample: unit i has inclusion probability π_i (``content.SampleMember``)
and, for a stratified sample, a sample stratum h (π constant within h, ``N_h = Σ_h 1/π_i``). The
run's voters give every unit an LLM label ŷ_i, and ``runs.routing`` sends units to people in phase 2:

- *census group*: units routed by rule (voters disagree, low confidence, a label always reviewed)
  go to people with probability π2 = 1;
- *auto group*: the would-be auto-accepted units (reasons ``agreed`` and ``audit``); a seeded
  random ``audit_share`` a of them goes to people (``audit_draw``: Bernoulli(a), independent of
  the item's content), π2 = a.

So the human-labelled set is a two-phase sample and the routing group is known for every phase-1
unit. Treating the human-labelled units as a simple random sample (the *naive* estimator) is
biased: the census group holds the hard, often violating, items at π2 = 1, and the easy ones are
seen at π2 = a.

Cells
-----
A cell is (sample stratum h, routing group g). ``n_hg`` units, ``m_hg`` of them human-labelled;
``f_hg = m_hg / n_hg`` is the realised phase-2 fraction (1 for a census cell with nothing pending,
≈ a for an auto cell). Units routed to people whose label is still pending (``--allow-pending``) are
missing at random within their cell: they lower f_hg. Units with no label at all (a failed voter)
are missing at random within their sample stratum: they are dropped from phase 1.

The estimator (all kinds)
-------------------------
For each phase-1 unit a pseudo-value (PPI of Angelopoulos et al. 2023 inside the auto group, in
the inverse-probability form of "active inference", Zrnic & Candès 2024)::

    ψ_i = (y_i − λ_g ŷ_i) / f_hg          if human-labelled (ξ_i = 1)
    ψ_i = λ_g ŷ_i / (1 − f_hg)            if not (ξ_i = 0)

with λ_census = 0 (the census cell needs no LLM: ψ_i = y_i when nothing is pending) and λ_auto = 1
(PPI), tuned (PPI++: λ exactly as ppi-python's ``ppi_mean_ci(lam=None)`` computes it on the auto
group's audit and its other units, ``stats.prevalence.ppi_lambda_batch``, with the sampling
weights 1/π) or 0 (the classical, human-only estimator on the same human-labelled units).
Given phase 1 and λ, ``E[ψ_i | unit] = f (y − λŷ)/f + (1 − f) λŷ/(1 − f) = y_i`` (Bernoulli phase 2
at rate f), so any phase-1 estimator of the mean of y applied to ψ is unbiased for the prevalence.
Summed over a cell (m_hg labelled, u_hg = n_hg − m_hg not)::

    Σ_cell ψ_i = (n_hg / u_hg) Σ_unlabelled λ_g ŷ_i + (n_hg / m_hg) Σ_labelled (y_i − λ_g ŷ_i)
               = n_hg [λ_g mean_unlabelled(ŷ) + mean_labelled(y − λ_g ŷ)]

i.e. exactly ppi-python's PPI estimate of the cell's mean (``ppi_mean_pointestimate`` with the
audit as labelled and the cell's other units as unlabelled), and the
phase-1 mean of ψ is ``Σ_g ŵ_g θ̂_g`` with ŵ_g the cell's phase-1 share: stratified PPI over the
routing strata, the census stratum known exactly, the shares estimated from phase 1 (double
sampling for stratification, Cochran 1977 §12.2). With λ = 0 it is the double-sampling estimator
``Σ_g ŵ_g ȳ_g``.

- ``ppi`` / ``ppi++`` (and their classical): the Hájek mean of ψ over the phase-1 sample with weights
  1/π_i, SE its linearised Hansen–Hurwitz SE (``stats.prevalence.hajek_batch``: with-replacement
  approximation, no finite-population correction). The empirical variance of ψ carries both
  phases: between the routing groups (the shares are estimated), within them, and the phase-2
  term of the audit. Wald interval (PPI's convention).
- ``stratified`` (λ = 0) and ``stratified-ppi`` (PPI++ with λ_h tuned in each sample stratum's auto
  cell, Fisch et al. 2024): ``θ̂ = Σ_h W_h ψ̄_h``, ``W_h = N_h/N``, and
  ``v = Σ_h W_h² (s²_ψ,h − f1_h Ŝ²_h) / n_h`` with ``f1_h = n_h/N_h`` and ``Ŝ²_h = ψ̄_h (1 − ψ̄_h)
  n_h/(n_h − 1)`` (ψ̄ clipped to [0, 1]) the within-stratum variance of y: the finite-population
  correction applies to the phase-1 part only, never to the phase-2 part. With every unit labelled
  (ψ = y) this is exactly Cochran's ``stratified_prevalence``. Needs π constant within each stratum
  and n_h ≥ 2. Intervals: Wald, and Wilson at Kish's n for ``stratified``.
- ``ht`` and ``hajek`` (design-based, human labels only): ``stats.prevalence.horvitz_thompson`` /
  ``hajek_mean_ci`` on the human-labelled units with π_i × π2_i, π2 = 1 for the census group and the
  run's ``audit_share`` for the auto group (× the cell's share of routed units already labelled when
  some are pending). HT divides by the frame size N; its SE is the HH SE of the same total written
  over every phase-1 unit (``ξ_i y_i / π2_i``, 0 when not labelled): over the labelled units alone
  HH misses the random size of the Bernoulli audit and undercovers (about 0.90 at 20 % in the
  simulation). Intervals: Wald and Wilson at Kish's n.

Coverage and unbiasedness are checked by simulation (tests/prevalence/test_estimators.py): the
routed estimators are unbiased and cover at ≥ 93 %; the naive one is biased. With a tuned λ
(``ppi++``, ``stratified-ppi``) λ is estimated on the same labels, which leaves a small O(1/n)
bias (about −1 % of the prevalence with some 230 audited items per stratum).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from stats import prevalence as sp

ESTIMATORS = ("ht", "hajek", "stratified", "ppi", "ppi++", "stratified-ppi")
PPI_KINDS = ("ppi", "ppi++", "stratified-ppi")
STRATIFIED_KINDS = ("stratified", "stratified-ppi")
CONVENTIONS = {
    "ht": "Wald (z·SE, Hansen–Hurwitz SE) and Wilson at Kish's effective n",
    "hajek": "Wald (z·SE, linearised Hansen–Hurwitz SE) and Wilson at Kish's effective n",
    "stratified": "Wald (z·SE, Cochran's stratified SE over two phases) and Wilson at Kish's effective n",
    "ppi": "Wald (z·SE, PPI with λ = 1; linearised Hansen–Hurwitz SE of the pseudo-values)",
    "ppi++": "Wald (z·SE, PPI++ with power-tuned λ; linearised Hansen–Hurwitz SE of the pseudo-values)",
    "stratified-ppi": "Wald (z·SE, stratified PPI++ with λ_h per stratum; two-phase stratified SE)",
}


class EstimatorInputError(ValueError):
    """Bad input: the message starts with the argument it names."""


@dataclass(frozen=True)
class RoutedUnits:
    """One entry per phase-1 unit (a sample member with a usable decision).

    ``y``: the human label indicator (any value where not ``labelled``); ``yhat``: the LLM's
    indicator (used in the auto group only); ``labelled``: a final human label exists;
    ``census``: routed to people by rule (π2 = 1), else the auto group; ``pending``: routed to
    people (a census unit, or an audited auto unit) whose label is not in yet; ``pi``: inclusion
    probability; ``stratum``: sample stratum ('' when unstratified).
    """

    y: np.ndarray
    yhat: np.ndarray
    labelled: np.ndarray
    census: np.ndarray
    pending: np.ndarray
    pi: np.ndarray
    stratum: np.ndarray

    @classmethod
    def from_lists(cls, *, y: Sequence[float], yhat: Sequence[float], labelled: Sequence[bool],
                   census: Sequence[bool], pi: Sequence[float], stratum: Sequence[str] | None = None,
                   pending: Sequence[bool] | None = None) -> RoutedUnits:
        size = len(pi)
        arrays = {"y": np.asarray(y, dtype=np.float64), "yhat": np.asarray(yhat, dtype=np.float64),
                  "labelled": np.asarray(labelled, dtype=bool), "census": np.asarray(census, dtype=bool),
                  "pending": np.zeros(size, dtype=bool) if pending is None else np.asarray(pending, dtype=bool),
                  "pi": np.asarray(pi, dtype=np.float64),
                  "stratum": np.asarray([""] * size if stratum is None else list(stratum), dtype=object)}
        if size == 0:
            raise EstimatorInputError("units: empty input (no sample member has a decision)")
        for name, array in arrays.items():
            if array.shape != (size,):
                raise EstimatorInputError(f"{name}: length {array.shape[0]}, expected {size}")
        pi_ = arrays["pi"]
        if np.any(~np.isfinite(pi_) | (pi_ <= 0) | (pi_ > 1)):
            raise EstimatorInputError("pi: inclusion probabilities must be in (0, 1]")
        if np.any(arrays["labelled"] & arrays["pending"]):
            raise EstimatorInputError("pending: a unit cannot be both labelled and pending")
        return cls(**arrays)


# --- the vectorised core (replicates × units; no validation) -----------------------------------


def pseudo_values_batch(y, yhat, labelled, census, lam, cell=None) -> np.ndarray:
    """ψ over the last axis. ``lam`` broadcasts over the leading axes (λ of the auto group);
    ``cell`` (int codes, same shape) splits the phase-2 fractions by cell; None: one cell per group."""
    y, yhat = np.asarray(y, dtype=np.float64), np.asarray(yhat, dtype=np.float64)
    labelled, census = np.asarray(labelled, dtype=bool), np.asarray(census, dtype=bool)
    lam = np.asarray(lam, dtype=np.float64)[..., None]
    fraction = np.ones(y.shape)
    codes = np.zeros(y.shape, dtype=np.int64) if cell is None else np.asarray(cell)
    for code in np.unique(codes):
        for group in (True, False):
            member = (codes == code) & (census == group)
            n = member.sum(-1, keepdims=True)
            m = (member & labelled).sum(-1, keepdims=True)
            with np.errstate(divide="ignore", invalid="ignore"):
                fraction = np.where(member, m / np.maximum(n, 1), fraction)
    yz = np.where(labelled, y, 0.0)
    lam_unit = np.where(census, 0.0, lam)
    prediction = lam_unit * np.where(census, 0.0, yhat)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(labelled, (yz - prediction) / fraction, prediction / (1 - fraction))


def routed_hajek_batch(y, yhat, labelled, census, pi, lam) -> dict[str, np.ndarray]:
    """``ppi``/``ppi++`` (and λ = 0, their classical) over a leading replicate axis: the Hájek mean of ψ
    and its linearised HH SE."""
    psi = pseudo_values_batch(y, yhat, labelled, census, lam)
    return sp.hajek_batch(psi, np.broadcast_to(np.asarray(pi, dtype=np.float64), psi.shape))


def stratum_batch(psi: np.ndarray, N_h: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ψ over one sample stratum (last axis) and its two-phase variance (module docstring)."""
    n = psi.shape[-1]
    mean = psi.mean(-1)
    if n < 2:
        return mean, np.zeros_like(mean)
    s2 = psi.var(-1, ddof=1)
    p = np.clip(mean, 0.0, 1.0)
    within = p * (1 - p) * n / (n - 1)
    return mean, np.maximum(s2 - (n / N_h) * within, 0.0) / n


def naive_batch(y, labelled) -> np.ndarray:
    """The human-labelled units as if a simple random sample: their plain mean (biased)."""
    labelled = np.asarray(labelled, dtype=bool)
    return np.where(labelled, y, 0.0).sum(-1) / labelled.sum(-1)


# --- the scalar API ----------------------------------------------------------------------------


def _agreement(units: RoutedUnits, alpha: float) -> dict:
    """LLM vs people on the audited auto units: share agreeing, Wilson CI."""
    audit = units.labelled & ~units.census
    n = int(audit.sum())
    if n == 0:
        return {"n": 0, "agreement": None, "ci": None}
    p = float((units.y[audit] == units.yhat[audit]).mean())
    se = float(np.sqrt(p * (1 - p) / n))
    return {"n": n, "agreement": p, "ci": list(sp.wilson_interval(p, se, n, alpha))}


def _strata_codes(units: RoutedUnits) -> tuple[list[str], np.ndarray]:
    names = sorted({str(s) for s in units.stratum})
    index = {name: code for code, name in enumerate(names)}
    return names, np.array([index[str(s)] for s in units.stratum], dtype=np.int64)


def _lam(units: RoutedUnits, mask: np.ndarray, kind: str) -> float:
    """λ of the auto group inside ``mask``: 1 for PPI, ppi-python's PPI++ λ, 0 when undefined."""
    if kind == "ppi":
        return 1.0
    auto = mask & ~units.census
    audit, others = auto & units.labelled, auto & ~units.labelled
    if audit.sum() < 2 or others.sum() == 0:
        return 0.0
    w = 1 / units.pi
    return float(sp.ppi_lambda_batch(units.y[audit], units.yhat[audit], units.yhat[others], w[audit], w[others]))


def _check_cells(units: RoutedUnits, names: list[str], codes: np.ndarray) -> None:
    for code, name in enumerate(names):
        where = f"stratum {name!r}" if name else "the sample"
        for group, title in ((False, "auto-accepted"), (True, "routed-by-rule")):
            cell = (codes == code) & (units.census == group)
            if cell.any() and not (cell & units.labelled).any():
                raise EstimatorInputError(
                    f"labels: no human label among the {int(cell.sum())} {title} items of {where}: their "
                    "prevalence cannot be estimated (an audit share of 0, or every label still pending)")


def _breakdown(units: RoutedUnits, names: list[str], codes: np.ndarray, psi: np.ndarray, lams: dict[int, float],
               stratified: bool) -> list[dict]:
    rows = []
    for code, name in enumerate(names):
        member = codes == code
        pi = units.pi[member]
        N_h = float((1 / pi).sum())
        if stratified:
            mean, var = stratum_batch(psi[member], N_h)
            estimate, se = float(mean), float(np.sqrt(var))
        else:
            hajek = sp.hajek_batch(psi[member], pi)
            estimate, se = float(hajek["estimate"]), float(hajek["se"])
        groups = {}
        for group, key in ((True, "census"), (False, "auto")):
            cell = member & (units.census == group)
            labelled = cell & units.labelled
            groups[key] = {"n": int(cell.sum()), "n_human": int(labelled.sum()),
                           "n_pending": int((cell & units.pending).sum()),
                           "share": float((1 / units.pi[cell]).sum() / N_h) if cell.any() else 0.0,
                           "human_mean": float(units.y[labelled].mean()) if labelled.any() else None,
                           "llm_mean": float(units.yhat[cell].mean()) if cell.any() and key == "auto" else None}
        rows.append({"stratum": name, "N_h": N_h, "n": int(member.sum()),
                     "n_human": int((member & units.labelled).sum()), "estimate": estimate,
                     "se": se if np.isfinite(se) else None, "lam": lams.get(code, 0.0), "groups": groups})
    return rows


def _interval(estimate: float, se: float | None, n: int, alpha: float) -> dict:
    z = sp._z(alpha)
    if se is None or not np.isfinite(se):
        return {"se": None, "ci": None, "ci_wilson": None}
    wilson = list(sp.wilson_interval(estimate, se, n, alpha)) if 0 <= estimate <= 1 and n > 0 else None
    return {"se": se, "ci": [estimate - z * se, estimate + z * se], "ci_wilson": wilson}


def _kish(estimate: float, se: float | None, n: int) -> float | None:
    if se is None or not se > 0 or not 0 < estimate < 1:
        return float(n)
    return float(min(n, estimate * (1 - estimate) / se**2))


def _design_based(units: RoutedUnits, kind: str, *, audit_share: float, frame_size: float | None,
                  alpha: float, names: list[str], codes: np.ndarray) -> dict:
    if audit_share <= 0 and (~units.census).any():
        raise EstimatorInputError("audit_share: the run audits no auto-accepted item (audit share 0): "
                                  f"{kind} has no human label for them")
    pi2 = np.where(units.census, 1.0, audit_share)
    # Pending labels: missing at random within the cell, so π2 shrinks by the cell's response rate.
    for code in range(len(names)):
        for group in (True, False):
            routed = (codes == code) & (units.census == group) & (units.labelled | units.pending)
            if routed.any():
                pi2 = np.where(routed, pi2 * (routed & units.labelled).sum() / routed.sum(), pi2)
    labelled = units.labelled
    y, pi = units.y[labelled], units.pi[labelled] * pi2[labelled]
    n = int(labelled.sum())
    try:
        if kind == "ht":
            # The same total Σ y/(π·π2) written over every phase-1 unit (0 for the unlabelled), so
            # that its Hansen–Hurwitz SE sees the random size of the audit (Bernoulli phase 2).
            N = frame_size if frame_size else float((1 / units.pi).sum())
            expanded = np.where(labelled, np.where(labelled, units.y, 0.0) / pi2, 0.0)
            out = sp.horvitz_thompson(expanded, units.pi, N, alpha=alpha)
            estimate, se = out["mean"], out["se_mean"]
        else:
            out = sp.hajek_mean_ci(y, pi, alpha=alpha)
            estimate, se = out["estimate"], out["se"]
    except ValueError as exc:
        raise EstimatorInputError(f"labels: {exc}") from exc
    psi = pseudo_values_batch(units.y, units.yhat, units.labelled, units.census, 0.0, codes)
    return {"estimate": estimate, **_interval(estimate, se, n, alpha), "lam": None, "n_human": n, "n_llm": 0,
            "n_eff": _kish(estimate, se, n), "classical": None,
            "strata": _breakdown(units, names, codes, psi, {}, stratified=False)}


def _combine(units: RoutedUnits, kind: str, lams: dict[int, float], names: list[str], codes: np.ndarray
             ) -> tuple[float, float, np.ndarray]:
    lam_unit = np.array([lams.get(int(c), 0.0) for c in codes]) if lams else np.zeros(codes.shape)
    psi = _pseudo_by_unit(units, lam_unit, codes)
    if kind in STRATIFIED_KINDS:
        total = float((1 / units.pi).sum())
        estimate, variance = 0.0, 0.0
        for code in range(len(names)):
            member = codes == code
            N_h = float((1 / units.pi[member]).sum())
            mean, var = stratum_batch(psi[member], N_h)
            W = N_h / total
            estimate += W * float(mean)
            variance += W**2 * float(var)
        return estimate, float(np.sqrt(variance)), psi
    hajek = sp.hajek_batch(psi, units.pi)
    return float(hajek["estimate"]), float(hajek["se"]), psi


def _pseudo_by_unit(units: RoutedUnits, lam_unit: np.ndarray, codes: np.ndarray) -> np.ndarray:
    # λ varies by stratum (stratified-ppi): ψ is linear in λ per unit, so compute it at λ = 0 and 1.
    psi0 = pseudo_values_batch(units.y, units.yhat, units.labelled, units.census, 0.0, codes)
    psi1 = pseudo_values_batch(units.y, units.yhat, units.labelled, units.census, 1.0, codes)
    return psi0 + lam_unit * (psi1 - psi0)


def routed_prevalence(units: RoutedUnits, kind: str, *, audit_share: float, frame_size: float | None = None,
                      alpha: float = 0.05) -> dict:
    """One estimator (``ESTIMATORS``) of the prevalence of the indicator y (module docstring).

    Returns ``{"estimator", "estimate", "se", "ci", "ci_wilson", "convention", "alpha", "lam",
    "n_human", "n_llm", "n_eff", "classical": {"estimate", "se", "ci", "ci_wilson"} | None,
    "strata": [...], "agreement": {"n", "agreement", "ci"}}``. ``n_eff``: for PPI, the human labels
    the classical estimator would need to be as precise (``n_human · var_classical / var_ppi``);
    for the others Kish's ``p(1 − p)/se²`` (at most n_human). Raises EstimatorInputError naming
    the argument: unknown estimator, alpha outside (0, 1), a stratified estimator on unequal
    probabilities within a stratum or a stratum of fewer than two units, a routing group with no
    human label.
    """
    if kind not in ESTIMATORS:
        raise EstimatorInputError(f"estimator: must be one of {', '.join(ESTIMATORS)}, not {kind!r}")
    if not 0 < alpha < 1:
        raise EstimatorInputError(f"alpha: must be between 0 and 1, got {alpha!r}")
    names, codes = _strata_codes(units)
    if kind in STRATIFIED_KINDS:
        for code, name in enumerate(names):
            pi = units.pi[codes == code]
            if not np.allclose(pi, pi[0], rtol=1e-9, atol=0):
                raise EstimatorInputError(
                    f"estimator: {kind} needs equal inclusion probabilities within each stratum, and stratum "
                    f"{name!r} has unequal ones (a score-weighted sample): use hajek or ppi")
            if pi.size < 2:
                raise EstimatorInputError(f"estimator: {kind} needs at least two units in stratum {name!r}")
    _check_cells(units, names, codes)
    result = {"estimator": kind, "convention": CONVENTIONS[kind], "alpha": alpha, "agreement": _agreement(units, alpha)}
    if kind in ("ht", "hajek"):
        return {**result, **_design_based(units, kind, audit_share=audit_share, frame_size=frame_size,
                                          alpha=alpha, names=names, codes=codes)}
    n = int(units.labelled.sum())
    if kind == "stratified":
        lams: dict[int, float] = {}
    elif kind == "stratified-ppi":
        lams = {code: _lam(units, codes == code, "ppi++") for code in range(len(names))}
    else:
        lam = _lam(units, np.ones(codes.shape, dtype=bool), kind)
        lams = {code: lam for code in range(len(names))}
    estimate, se, psi = _combine(units, kind, lams, names, codes)
    out = {**result, "estimate": estimate, **_interval(estimate, se, n, alpha),
           "lam": None if kind == "stratified" else (lams[0] if kind != "stratified-ppi" else None),
           "n_human": n, "strata": _breakdown(units, names, codes, psi, lams, kind in STRATIFIED_KINDS)}
    if kind not in PPI_KINDS:
        return {**out, "n_llm": 0, "n_eff": _kish(estimate, se, n), "classical": None}
    if kind == "stratified-ppi":
        out["lam_by_stratum"] = {names[code]: lam for code, lam in lams.items()}
    classical_estimate, classical_se, _ = _combine(units, kind, {}, names, codes)
    classical = {"estimate": classical_estimate, **_interval(classical_estimate, classical_se, n, alpha)}
    out["ci_wilson"] = None  # PPI intervals are Wald only
    n_eff = None if not se > 0 else n * classical_se**2 / se**2
    return {**out, "n_llm": int((~units.census).sum()), "n_eff": n_eff, "classical": classical}
