"""Coverage of the prevalence intervals, tested by simulation rather than assumed.

Synthetic finite populations (N = 20,000 items) with known prevalence (0.5 %, 2 %, 20 %) and an
LLM of high or of mediocre agreement with the truth. Each of 1,000 replicates draws a sample of
m = 2,000 items that the LLM labels and audits a simple random subsample of n of them (human
labels), under three designs:

- uniform: simple random sampling;
- stratified: three strata (say, surfaces) of 60 %, 30 %, 10 % of the items with relative risk
  1/2, 1, 4, the sample allocated 40 / 30 / 30 %, the audit proportional to the sample;
- score-weighted: randomized systematic πps on the LLM's score, as ``content.sampling`` draws it.

Every estimator's nominal 95 % interval is checked to cover the population prevalence in at least
93 % of the replicates. Everything is vectorised over the replicates: the uniform and stratified
draws are multivariate hypergeometric over (stratum, truth, LLM score) cells, the πps draws are
permutations of the population; the estimators are the module's ``*_batch`` kernels, which
test_prevalence.py checks against the scalar functions and ppi-python.
"""

from __future__ import annotations

import numpy as np
import pytest

from stats.prevalence import (
    hajek_batch,
    horvitz_thompson_batch,
    ppi_lambda_batch,
    ppi_mean_batch,
    stratified_ppi_batch,
    stratified_prevalence_batch,
    wilson_batch,
)

ALPHA = 0.05
Z = 1.959963984540054
REPLICATES = 1000
POPULATION = 25_000  # < 2**16: item indices fit uint16
SAMPLE = 5_000
# The score-weighted design's size is max(score, FLOOR): the floor bounds the weights' spread.
FLOOR = 0.1
# The audit sizes the estimators are meant for, by prevalence (see the module README section):
# at 0.5 % a uniform audit needs ~2,000 human labels before Wald intervals hold; the stratified and
# score-weighted designs exist to need fewer.
AUDIT = {0.005: 2000, 0.02: 1000, 0.2: 500}
PREVALENCES = (0.005, 0.02, 0.2)
# LLM score levels, and how often an item of each truth gets each level; label = score ≥ 0.5.
SCORES = np.array([0.02, 0.3, 0.7, 0.95])
LLMS = {
    "good": {1: [0.03, 0.05, 0.12, 0.80], 0: [0.97, 0.02, 0.007, 0.003]},  # sensitivity 0.92, FPR 1 %
    "mediocre": {1: [0.20, 0.20, 0.25, 0.35], 0: [0.80, 0.12, 0.05, 0.03]},  # sensitivity 0.60, FPR 8 %
}
STRATUM_SHARES = np.array([0.6, 0.3, 0.1])
STRATUM_RISK = np.array([0.5, 1.0, 4.0])
STRATUM_SAMPLE = np.array([0.4, 0.3, 0.3])


def _round_to(total: int, shares: np.ndarray) -> np.ndarray:
    """Largest-remainder rounding of ``total · shares`` (shares sum to 1)."""
    raw = total * np.asarray(shares, dtype=np.float64)
    counts = np.floor(raw).astype(np.int64)
    counts[np.argsort(counts - raw)[: total - counts.sum()]] += 1
    return counts


def population(prevalence: float, llm: str) -> np.ndarray:
    """Cell counts, shape (strata, truth, score level), summing to POPULATION with exactly
    round(prevalence · POPULATION) violations."""
    sizes = _round_to(POPULATION, STRATUM_SHARES)
    risk = STRATUM_SHARES * STRATUM_RISK
    positives = _round_to(round(prevalence * POPULATION), risk / risk.sum())
    cells = np.zeros((3, 2, len(SCORES)), dtype=np.int64)
    for h in range(3):
        for truth, count in ((1, positives[h]), (0, sizes[h] - positives[h])):
            cells[h, truth] = _round_to(int(count), np.array(LLMS[llm][truth]) / sum(LLMS[llm][truth]))
    return cells


def _hypergeometric(rng: np.random.Generator, colours: np.ndarray, draws) -> np.ndarray:
    """Multivariate hypergeometric draws, one per row of ``colours`` (replicates × colours)."""
    colours = np.asarray(colours, dtype=np.int64)
    left = colours.sum(-1)
    wanted = np.broadcast_to(np.asarray(draws, dtype=np.int64), left.shape).copy()
    out = np.zeros_like(colours)
    for c in range(colours.shape[-1] - 1):
        good = colours[..., c]
        out[..., c] = rng.hypergeometric(good, left - good, wanted)
        left, wanted = left - good, wanted - out[..., c]
    out[..., -1] = wanted
    return out


def _expand(counts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Items from cell counts: replicates × total, each cell's value repeated its count (order is
    irrelevant to every estimator)."""
    total = int(counts[0].sum())
    ends = np.cumsum(counts, axis=-1)
    cell = (np.arange(total)[None, :, None] >= ends[:, None, :]).sum(-1)
    return np.asarray(values)[cell]


def _cell_values(cells_shape) -> tuple[np.ndarray, np.ndarray]:
    """Truth and LLM label of each flattened (truth, score level) cell."""
    truth, level = np.meshgrid(np.arange(cells_shape[0]), np.arange(cells_shape[1]), indexing="ij")
    return truth.ravel().astype(np.float64), (SCORES[level.ravel()] >= 0.5).astype(np.float64)


def _record(results: dict, name: str, low: np.ndarray, high: np.ndarray, truth: float) -> None:
    results[name] = {"coverage": float(np.mean((low <= truth) & (truth <= high))), "width": float(np.mean(high - low))}


def _wald(results: dict, name: str, estimate: np.ndarray, se: np.ndarray, truth: float) -> None:
    _record(results, name, estimate - Z * se, estimate + Z * se, truth)


def _ppi_rows(results: dict, prefix: str, y, yhat, unlabeled, truth, w=None, w_unlabeled=None) -> None:
    lam = ppi_lambda_batch(y, yhat, unlabeled, w, w_unlabeled)
    # Unweighted, both variance conventions are the same; weighted, ppi-python's is shown beside.
    variances = ("linearised",) if w is None else ("linearised", "ppi-python")
    for variance in variances:
        suffix = "" if variance == "linearised" else " [ppi-python variance]"
        for name, value in (("classical", 0.0), ("PPI", 1.0), ("PPI++", lam)):
            lams = np.broadcast_to(value, y.shape[:-1])
            result = ppi_mean_batch(y, yhat, unlabeled, lams, w, w_unlabeled, variance=variance)
            _wald(results, f"{prefix} {name}{suffix}", result["estimate"], result["se"], truth)


def uniform_design(cells: np.ndarray, audit: int, rng: np.random.Generator) -> dict:
    truth = cells[:, 1].sum() / cells.sum()
    flat = cells.sum(0).reshape(-1)  # (truth, level) cells
    sample = _hypergeometric(rng, np.broadcast_to(flat, (REPLICATES, flat.size)), SAMPLE)
    audited = _hypergeometric(rng, sample, audit)
    y_values, llm_values = _cell_values(cells.shape[1:])
    y, yhat = _expand(audited, y_values), _expand(audited, llm_values)
    unlabeled = _expand(sample - audited, llm_values)
    results: dict = {}
    ht = horvitz_thompson_batch(y, np.full(y.shape, audit / POPULATION), POPULATION)
    _wald(results, "uniform HT (Wald)", ht["mean"], ht["se_mean"], truth)
    _record(results, "uniform HT (Wilson)", *wilson_batch(ht["mean"], ht["se_mean"], audit, ALPHA), truth)
    _ppi_rows(results, "uniform", y, yhat, unlabeled, truth)
    return results


def stratified_design(cells: np.ndarray, audit: int, rng: np.random.Generator) -> dict:
    truth = cells[:, 1].sum() / cells.sum()
    samples, audits = _round_to(SAMPLE, STRATUM_SAMPLE), _round_to(audit, STRATUM_SAMPLE)
    y_values, llm_values = _cell_values(cells.shape[1:])
    strata, counts = [], []
    for h in range(cells.shape[0]):
        flat = cells[h].reshape(-1)
        sample = _hypergeometric(rng, np.broadcast_to(flat, (REPLICATES, flat.size)), samples[h])
        audited = _hypergeometric(rng, sample, audits[h])
        y = _expand(audited, y_values)
        strata.append(
            {
                "W_h": flat.sum() / cells.sum(),
                "y": y,
                "yhat": _expand(audited, llm_values),
                "yhat_unlabeled": _expand(sample - audited, llm_values),
            }
        )
        counts.append((flat.sum(), audits[h], y.sum(-1)))
    results: dict = {}
    N_h = np.array([c[0] for c in counts], dtype=np.float64)
    n_h = np.array([c[1] for c in counts], dtype=np.float64)
    y_h = np.stack([c[2] for c in counts], axis=-1)
    design = stratified_prevalence_batch(N_h[None, :], n_h[None, :], y_h)
    _wald(results, "stratified (Wald)", design["estimate"], design["se"], truth)
    _record(results, "stratified (Wilson)", *wilson_batch(design["estimate"], design["se"], audit, ALPHA), truth)
    tuned, plain = stratified_ppi_batch(strata, True), stratified_ppi_batch(strata, False)
    _wald(results, "stratified classical", tuned["classical_estimate"], tuned["classical_se"], truth)
    _wald(results, "stratified PPI", plain["estimate"], plain["se"], truth)
    _wald(results, "stratified PPI++", tuned["estimate"], tuned["se"], truth)
    return results


_PERMUTATIONS: list[np.ndarray] = []


def _permutations(chunk: int = 250) -> list[np.ndarray]:
    """Random orders of the population for the πps draws, replicates × POPULATION in chunks.
    Drawn once and shared by the scenarios (their draws are correlated, each one's is valid)."""
    if not _PERMUTATIONS:
        rng = np.random.default_rng(2024)
        index = np.arange(POPULATION, dtype=np.uint16)
        for start in range(0, REPLICATES, chunk):
            rows = min(chunk, REPLICATES - start)
            _PERMUTATIONS.append(rng.permuted(np.broadcast_to(index, (rows, POPULATION)), axis=1))
    return _PERMUTATIONS


def _systematic_pps(rng: np.random.Generator, pi: np.ndarray) -> np.ndarray:
    """Randomized systematic πps (random order, then systematic on cumulated π): replicates ×
    SAMPLE indices into the population. Σ π = SAMPLE, so every replicate draws exactly SAMPLE."""
    picks = []
    for order in _permutations():
        cumulative = np.cumsum(pi[order], axis=1) - rng.random((order.shape[0], 1))
        hits = np.diff(np.floor(cumulative), axis=1, prepend=-1.0) > 0
        picks.append(order[hits].reshape(order.shape[0], SAMPLE))
    return np.concatenate(picks)


def _pps_probabilities(size: np.ndarray, n: int) -> np.ndarray:
    """π_i = n size_i / Σ size, capped at 1 with the rest rescaled (as content.sampling does)."""
    pi = np.zeros(size.size)
    certain = np.zeros(size.size, dtype=bool)
    while True:
        pi[~certain] = (n - certain.sum()) * size[~certain] / size[~certain].sum()
        pi[certain] = 1.0
        if not np.any(pi[~certain] > 1):
            return pi
        certain |= pi >= 1


def score_weighted_design(cells: np.ndarray, audit: int, rng: np.random.Generator) -> dict:
    truth = cells[:, 1].sum() / cells.sum()
    flat = cells.sum(0).reshape(-1)
    y_values, llm_values = _cell_values(cells.shape[1:])
    level_values = np.tile(np.arange(len(SCORES)), 2)
    item_cell = np.repeat(np.arange(flat.size), flat)
    pi = _pps_probabilities(np.maximum(SCORES[level_values[item_cell]], FLOOR), SAMPLE)
    sample = _systematic_pps(rng, pi)
    # The audit: a simple random n of the m drawn.
    order = np.argpartition(rng.random(sample.shape), audit, axis=1)
    audited, rest = np.take_along_axis(sample, order[:, :audit], 1), np.take_along_axis(sample, order[:, audit:], 1)
    y, yhat, unlabeled = y_values[item_cell[audited]], llm_values[item_cell[audited]], llm_values[item_cell[rest]]
    pi_audit = pi[audited] * audit / SAMPLE
    results: dict = {}
    ht = horvitz_thompson_batch(y, pi_audit, POPULATION)
    _wald(results, "score-weighted HT (Wald)", ht["mean"], ht["se_mean"], truth)
    hajek = hajek_batch(y, pi_audit)
    _wald(results, "score-weighted Hájek (Wald)", hajek["estimate"], hajek["se"], truth)
    _record(
        results, "score-weighted Hájek (Wilson)", *wilson_batch(hajek["estimate"], hajek["se"], audit, ALPHA), truth
    )
    _ppi_rows(results, "score-weighted", y, yhat, unlabeled, truth, 1 / pi[audited], 1 / pi[rest])
    return results


DESIGNS = {"uniform": uniform_design, "stratified": stratified_design, "score-weighted": score_weighted_design}


def scenario_results(prevalence: float, llm: str, seed: int = 0) -> dict:
    """Every design's estimator rows for one population, REPLICATES draws each."""
    cells = population(prevalence, llm)
    rng = np.random.default_rng([seed, int(prevalence * 1000), len(llm)])
    results: dict = {}
    for design in DESIGNS.values():
        results.update(design(cells, AUDIT[prevalence], rng))
    return results


SCENARIOS = [(p, llm) for p in PREVALENCES for llm in LLMS]

# Where an interval does NOT hold 93 % at these audit sizes, said here rather than hidden: the
# lowest prevalence from which the row is claimed (None: not claimed at any), and why. Below the
# claim the test still asserts coverage ≥ UNCLAIMED_FLOOR so that a regression shows.
NOT_CLAIMED_BELOW = {
    "uniform PPI++": (0.2, "λ tuned on the same rare-event audit: 0.93 at 0.5 %/2 % only by noise"),
    "stratified (Wald)": (0.2, "≈ 2-5 expected violations per stratum audit: use the Wilson interval"),
    "stratified classical": (0.2, "as stratified (Wald)"),
    "stratified PPI++": (None, "three λ_h tuned on small stratum audits: 0.89-0.93"),
    "score-weighted HT (Wald)": (0.02, "weights up to 9.5× and ~10 violations in the audit at 0.5 %"),
    "score-weighted Hájek (Wald)": (0.02, "as score-weighted HT (Wald)"),
    "score-weighted classical": (0.02, "as score-weighted HT (Wald)"),
    "score-weighted PPI++": (None, "0.91-0.93 at 0.5 % with a mediocre LLM and at 20 % with a good one"),
}
UNCLAIMED_FLOOR = 0.85
# ppi-python's own weighted variance (var(w·x)/n, not centred): shown in the table, not claimed.
PPI_PYTHON_VARIANCE = "[ppi-python variance]"


def claimed(row: str, prevalence: float) -> bool:
    if PPI_PYTHON_VARIANCE in row:
        return False
    lowest = NOT_CLAIMED_BELOW.get(row, (0.0, ""))[0]
    return lowest is not None and prevalence >= lowest


def coverage_table(seed: int = 0) -> dict:
    """{(prevalence, llm): {estimator row: {"coverage", "width"}}} over REPLICATES draws each."""
    return {scenario: scenario_results(*scenario, seed=seed) for scenario in SCENARIOS}


def format_table(table: dict) -> str:
    """The coverage table as Markdown: coverage (mean width) per estimator and scenario; an
    asterisk marks a cell outside the claimed range."""
    header = "| estimator | " + " | ".join(f"{p:.1%} {llm} LLM" for p, llm in table) + " |"
    lines = [header, "|" + " --- |" * (len(table) + 1)]
    for row in next(iter(table.values())):
        cells = []
        for (prevalence, _), rows in table.items():
            mark = "" if claimed(row, prevalence) else "*"
            cells.append(f"{rows[row]['coverage']:.3f}{mark} ({rows[row]['width']:.4f})")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def table() -> dict:
    return coverage_table()


def test_populations_have_the_stated_prevalence_and_llm_quality():
    for prevalence, llm in SCENARIOS:
        cells = population(prevalence, llm)
        assert cells.sum() == POPULATION
        assert cells[:, 1].sum() == round(prevalence * POPULATION)
        labelled = cells[:, :, SCORES >= 0.5].sum((0, 2))
        sensitivity = labelled[1] / cells[:, 1].sum()
        assert sensitivity == pytest.approx(0.92 if llm == "good" else 0.60, abs=0.03)


def test_systematic_pps_draws_with_the_stated_probabilities():
    rng = np.random.default_rng(1)
    pi = _pps_probabilities(SCORES[np.arange(POPULATION) % len(SCORES)], SAMPLE)
    assert pi.sum() == pytest.approx(SAMPLE)
    sample = _systematic_pps(rng, pi)
    assert all(len(set(row)) == SAMPLE for row in sample[:5])
    frequency = np.bincount(sample.ravel(), minlength=POPULATION) / REPLICATES
    for level in range(len(SCORES)):
        members = np.arange(POPULATION) % len(SCORES) == level
        assert frequency[members].mean() == pytest.approx(pi[members][0], rel=0.03)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[f"{p:.1%}-{llm}" for p, llm in SCENARIOS])
def test_nominal_95_intervals_cover_at_least_93_percent(table, scenario):
    rows = table[scenario]
    low = {name: row["coverage"] for name, row in rows.items() if claimed(name, scenario[0]) and row["coverage"] < 0.93}
    assert not low, f"coverage below 93 % at {scenario}: {low}"
    unclaimed = {
        name: row["coverage"]
        for name, row in rows.items()
        if PPI_PYTHON_VARIANCE not in name and not claimed(name, scenario[0]) and row["coverage"] < UNCLAIMED_FLOOR
    }
    assert not unclaimed, f"coverage below {UNCLAIMED_FLOOR} at {scenario}: {unclaimed}"


def test_every_design_has_a_claimed_interval_at_every_prevalence(table):
    for scenario, rows in table.items():
        for design in DESIGNS:
            assert any(claimed(name, scenario[0]) for name in rows if name.startswith(design)), (design, scenario)


@pytest.mark.parametrize("design", DESIGNS)
def test_ppi_plus_plus_is_never_wider_than_classical_and_narrower_with_a_good_llm(table, design):
    for (prevalence, llm), rows in table.items():
        tuned, classical = rows[f"{design} PPI++"]["width"], rows[f"{design} classical"]["width"]
        assert tuned <= classical * 1.02, (prevalence, llm, tuned, classical)
        if llm == "good":
            assert tuned < classical * 0.95, (prevalence, llm, tuned, classical)
