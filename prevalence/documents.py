"""An estimate as a plain JSON document and as one line of text (CLI, API and pages share them)."""

from __future__ import annotations

from typing import Any

from prevalence.models import PrevalenceEstimate


def estimate_document(estimate: PrevalenceEstimate) -> dict[str, Any]:
    return {
        "id": estimate.pk, "policy_version": str(estimate.policy_version),
        "policy": estimate.policy_version.policy.slug,
        "label": estimate.label, "sample": estimate.sample.name, "run": estimate.run.name,
        "estimator": estimate.estimator, "estimate": estimate.estimate, "se": estimate.se,
        "ci": [estimate.ci_low, estimate.ci_high] if estimate.ci_low is not None else None,
        "ci_wilson": [estimate.ci_wilson_low, estimate.ci_wilson_high] if estimate.ci_wilson_low is not None else None,
        "convention": estimate.convention, "alpha": estimate.alpha, "n_human": estimate.n_human,
        "n_llm": estimate.n_llm, "n_pending": estimate.n_pending, "effective_n": estimate.effective_n,
        "lam": estimate.lam,
        "classical": None if estimate.classical_estimate is None else {
            "estimate": estimate.classical_estimate, "se": estimate.classical_se,
            "ci": [estimate.classical_ci_low, estimate.classical_ci_high]},
        "strata": estimate.strata, "design": estimate.design,
        "golden_set_version": str(estimate.golden_set_version) if estimate.golden_set_version else None,
        "agreement": estimate.agreement, "simulated": estimate.simulated, "code_version": estimate.code_version,
        "created_by": estimate.created_by.get_username() if estimate.created_by else None,
        "created_at": estimate.created_at.isoformat(),
    }


def percent(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f} %"


def estimate_line(estimate: PrevalenceEstimate) -> str:
    """``#ID label estimator: p [low, high] (Wilson [..]; human-only p [..]) n_human …``."""
    text = f"#{estimate.pk} {estimate.label} {estimate.estimator}: {percent(estimate.estimate)}"
    if estimate.ci_low is not None:
        text += f" [{percent(estimate.ci_low)}, {percent(estimate.ci_high)}]"
    if estimate.ci_wilson_low is not None:
        text += f" (Wilson [{percent(estimate.ci_wilson_low)}, {percent(estimate.ci_wilson_high)}])"
    if estimate.classical_estimate is not None:
        text += (f" (human-only {percent(estimate.classical_estimate)} [{percent(estimate.classical_ci_low)}, "
                 f"{percent(estimate.classical_ci_high)}])")
    text += f" · {estimate.n_human} human, {estimate.n_llm} LLM"
    if estimate.effective_n is not None:
        text += f", effective n {estimate.effective_n:,.0f}"
    return text
