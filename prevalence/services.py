"""Compute and store prevalence estimates from a labeling run on a probability sample.

The inputs: the sample's members (inclusion probability, stratum), the run's decision per item
(the routing reason and the LLM label) and the final human label per item under the run's policy
version (``prevalence.selectors.final_human_labels``). Rule-routed items (disagreement, low
confidence, a label always reviewed) form the census group (π2 = 1), the would-be auto-accepted
ones (reasons ``agreed`` and ``audit``) the auto group with its audit share. The estimators and
their derivation are in :mod:`prevalence.estimators`.

Items without a label yet (a routed item whose human label is pending, a member without a
decision, a failed voter) are refused by default, naming how many; ``allow_pending`` estimates
treating them as missing at random within their stratum (stored as ``n_pending``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from content.models import Sample
from evaluation.services.evaluations import code_version
from goldsets.models import GoldenSetVersion
from policies.selectors import policy_version_spec
from prevalence.estimators import ESTIMATORS, STRATIFIED_KINDS, EstimatorInputError, RoutedUnits, routed_prevalence
from prevalence.models import ANY_VIOLATION, PrevalenceEstimate
from prevalence.selectors import (
    final_human_labels,
    golden_labels,
    run_decisions,
    run_simulated_voters,
    sample_member_rows,
)
from runs.models import DecisionOutcome, LabelingRun, RoutingReason
from stats.prevalence import wilson_interval
from touchstone.audit import audit_event_record
from touchstone.errors import ApplicationError
from touchstone.roles import permission_require

AUTO_REASONS = frozenset({RoutingReason.AGREED, RoutingReason.AUDIT})


class PrevalenceInvalid(ApplicationError):
    """Bad input or data: the message starts with the field, ``extra["field"]`` names it."""

    code = "invalid_prevalence"
    status = 400

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}", extra={"field": field, "reason": reason})


@dataclass(frozen=True)
class PrevalenceRequest:
    """What to estimate. ``estimators`` None: every one that applies to the sample's design (the
    stratified ones need equal probabilities within strata); ``labels`` None: every taxonomy label
    and any violation."""

    estimators: tuple[str, ...] | None = None
    labels: tuple[str, ...] | None = None
    alpha: float = 0.05
    allow_pending: bool = False


@dataclass
class _Inputs:
    units: dict  # the RoutedUnits arrays except y and yhat
    human: dict[int, str]
    llm: list[str]
    item_ids: list[int]
    n_pending: int
    design: dict


def _gather(*, sample: Sample, run: LabelingRun, taxonomy: set[str], allow_pending: bool) -> _Inputs:
    members = sample_member_rows(sample=sample)
    item_ids = [m.item_id for m in members]
    decisions = run_decisions(run=run, item_ids=item_ids)
    human = final_human_labels(policy_version_id=run.prompt_version.policy_version_id, item_ids=item_ids,
                               taxonomy=taxonomy)
    kept, no_decision, waiting = [], 0, 0
    for member in members:
        outcome, reason, label = decisions.get(member.item_id, (None, None, ""))
        if outcome is None or outcome == DecisionOutcome.FAILED:
            no_decision += 1  # no LLM label and no routing: missing at random within the stratum
            continue
        census = reason not in AUTO_REASONS
        routed = outcome == DecisionOutcome.HUMAN_REVIEW
        labelled = routed and member.item_id in human.final
        pending = routed and not labelled
        waiting += pending
        kept.append((member, census, labelled, pending, label))
    if (no_decision or waiting) and not allow_pending:
        raise PrevalenceInvalid("pending", f"{no_decision + waiting} of the sample's {len(members)} items have no "
                                           f"label yet ({waiting} routed to people without a final human label, "
                                           f"{no_decision} without a decision or with a failed voter): wait for them, "
                                           "or allow pending items to estimate treating them as missing at random "
                                           "within their stratum")
    if not kept:
        raise PrevalenceInvalid("run", f"run {run.name!r} has no usable decision on sample {sample.name!r}")
    design = {"method": sample.method, "frame_size": sample.frame_size, "size": sample.size, "seed": sample.seed,
              "strata": sample.strata, "parameters": sample.parameters, "audit_share": run.audit_share,
              "audit_seed": run.audit_seed, "confidence_threshold": run.confidence_threshold,
              "routed_by_rule": sum(1 for row in kept if row[1]), "auto": sum(1 for row in kept if not row[1]),
              "audited": sum(1 for row in kept if not row[1] and (row[2] or row[3])),
              "no_decision": no_decision}
    return _Inputs(
        units={"labelled": [r[2] for r in kept], "census": [r[1] for r in kept], "pending": [r[3] for r in kept],
               "pi": [r[0].inclusion_probability for r in kept], "stratum": [r[0].stratum for r in kept]},
        human={r[0].item_id: human.final[r[0].item_id] for r in kept if r[2]}, llm=[r[4] for r in kept],
        item_ids=[r[0].item_id for r in kept], n_pending=no_decision + waiting, design=design)


def _golden_agreement(*, version: GoldenSetVersion, inputs: _Inputs, positive: set[str], alpha: float) -> dict:
    gold = golden_labels(version=version, item_ids=inputs.item_ids)
    pairs = [(gold[i] in positive, llm in positive) for i, llm in zip(inputs.item_ids, inputs.llm, strict=True)
             if i in gold and llm]
    if not pairs:
        return {"golden_set_version": str(version), "n": 0, "agreement": None, "ci": None}
    n = len(pairs)
    p = sum(a == b for a, b in pairs) / n
    return {"golden_set_version": str(version), "n": n, "agreement": p,
            "ci": list(wilson_interval(p, (p * (1 - p) / n) ** 0.5, n, alpha))}


def _check_request(request: PrevalenceRequest, taxonomy: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if not isinstance(request.alpha, int | float) or not 0 < request.alpha < 1:
        raise PrevalenceInvalid("alpha", f"{request.alpha!r} is not a number between 0 and 1")
    for name in request.estimators or ():
        if name not in ESTIMATORS:
            raise PrevalenceInvalid("estimator", f"{name!r} is not one of {', '.join(ESTIMATORS)}")
    for label in request.labels or ():
        if label != ANY_VIOLATION and label not in taxonomy:
            raise PrevalenceInvalid("label", f"{label!r} is not a label of the policy version "
                                             f"({', '.join(taxonomy)}) nor {ANY_VIOLATION!r}")
    return tuple(request.estimators or ESTIMATORS), tuple(request.labels or (*taxonomy, ANY_VIOLATION))


def prevalence_estimate_create(*, sample: Sample, run: LabelingRun, request: PrevalenceRequest,
                               golden_set_version: GoldenSetVersion | None = None,
                               acting_user: AbstractBaseUser) -> list[PrevalenceEstimate]:
    """Estimate the prevalence of each requested label with each requested estimator and store the
    immutable estimates (one transaction, one audit event each). Needs
    ``prevalence.add_prevalenceestimate`` (labeling ops). Raises PrevalenceInvalid naming the
    field: a run of another sample, an unknown label or estimator, alpha outside (0, 1), a golden
    set of another policy, items still pending (unless allowed), a stratified estimator asked for
    a sample with unequal probabilities within a stratum, a routing group with no human label."""
    permission_require(acting_user, "prevalence.add_prevalenceestimate", to="compute prevalence estimates")
    if run.sample_id != sample.pk:
        raise PrevalenceInvalid("run", f"run {run.name!r} labelled sample {run.sample.name!r}, not {sample.name!r}")
    policy_version = run.prompt_version.policy_version
    spec = policy_version_spec(policy_version)
    taxonomy = [label.key for label in spec.labels]
    violating = {label.key for label in spec.labels if label.is_violation}
    if golden_set_version is not None and golden_set_version.policy_version.policy_id != policy_version.policy_id:
        raise PrevalenceInvalid("golden_set", f"{golden_set_version} is a golden set of another policy")
    estimators, labels = _check_request(request, taxonomy)
    inputs = _gather(sample=sample, run=run, taxonomy=set(taxonomy), allow_pending=request.allow_pending)
    code, simulated = code_version(), bool(run_simulated_voters(run=run))
    rows = []
    for label in labels:
        positive = violating if label == ANY_VIOLATION else {label}
        units = RoutedUnits.from_lists(
            y=[1.0 if inputs.human.get(i) in positive else 0.0 for i in inputs.item_ids],
            yhat=[1.0 if llm in positive else 0.0 for llm in inputs.llm], **inputs.units)
        gold = (None if golden_set_version is None else
                _golden_agreement(version=golden_set_version, inputs=inputs, positive=positive, alpha=request.alpha))
        for kind in estimators:
            try:
                result = routed_prevalence(units, kind, audit_share=run.audit_share,
                                           frame_size=sample.frame_size or None, alpha=request.alpha)
            except EstimatorInputError as exc:
                if request.estimators is None and kind in STRATIFIED_KINDS and str(exc).startswith("estimator:"):
                    continue  # not asked for by name, and the design does not allow it
                field, _, reason = str(exc).partition(": ")
                raise PrevalenceInvalid(field, f"{label}: {reason}") from exc
            rows.append(_record(result, label=label, sample=sample, run=run, policy_version=policy_version,
                                golden_set_version=golden_set_version, gold=gold, inputs=inputs, code=code,
                                simulated=simulated, acting_user=acting_user))
    return _store(rows, acting_user=acting_user)


def _number(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _record(result: dict, *, label: str, sample: Sample, run: LabelingRun, policy_version, golden_set_version,
            gold: dict | None, inputs: _Inputs, code: dict, simulated: bool,
            acting_user: AbstractBaseUser) -> PrevalenceEstimate:
    ci, wilson, classical = result["ci"] or (None, None), result["ci_wilson"] or (None, None), result["classical"]
    strata = result["strata"]
    if result.get("lam_by_stratum"):
        strata = [{**row, "lam": result["lam_by_stratum"][row["stratum"]]} for row in strata]
    return PrevalenceEstimate(
        policy_version=policy_version, label=label, sample=sample, run=run, estimator=result["estimator"],
        estimate=float(result["estimate"]), se=_number(result["se"]), ci_low=_number(ci[0]), ci_high=_number(ci[1]),
        ci_wilson_low=_number(wilson[0]), ci_wilson_high=_number(wilson[1]), convention=result["convention"],
        alpha=result["alpha"], n_human=result["n_human"], n_llm=result["n_llm"], n_pending=inputs.n_pending,
        effective_n=_number(result["n_eff"]), lam=_number(result["lam"]),
        classical_estimate=classical and _number(classical["estimate"]),
        classical_se=classical and _number(classical["se"]),
        classical_ci_low=classical and classical["ci"] and _number(classical["ci"][0]),
        classical_ci_high=classical and classical["ci"] and _number(classical["ci"][1]),
        strata=strata, design=inputs.design, golden_set_version=golden_set_version,
        agreement={"audit": result["agreement"], "golden_set": gold}, simulated=simulated, code_version=code,
        created_by=acting_user)


@transaction.atomic(durable=True)
def _store(rows: list[PrevalenceEstimate], *, acting_user: AbstractBaseUser) -> list[PrevalenceEstimate]:
    stored = []
    for row in rows:
        row.save()
        audit_event_record(actor=acting_user, event_type="prevalence_estimate.created", obj=row, details={
            "label": row.label, "estimator": row.estimator, "sample": row.sample.name, "run": row.run.name,
            "estimate": row.estimate, "ci": [row.ci_low, row.ci_high], "n_human": row.n_human,
            "n_pending": row.n_pending, "simulated": row.simulated})
        stored.append(row)
    return stored
