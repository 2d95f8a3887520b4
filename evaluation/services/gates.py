"""The publish gate's verdict: does a candidate policy version pass its policy's gate?

The gate (:mod:`policies.gate`) names a golden set, a metric and a rule. The evidence:

- **the candidate**: the newest stored Evaluation, on the gate's golden-set version, of a signal
  version made with a prompt version compiled from the candidate policy version (a labeling
  run's signal version: ``run create --golden-set`` then ``evaluate``). Without one the gate
  fails, naming the commands that make it.
- **the published version** (if the policy has one): the same, for a prompt version of the
  published policy version, preferring one with the candidate's prompt template and model;
  and the paired Comparison (A = published, B = candidate) on the same golden-set version: the
  newest stored one with the gate's options, else computed now with
  ``comparison_create_unchecked`` and stored (the approver need not hold the evaluation
  permissions to compute it).

Rules:

- ``at_least X``: pass when the candidate's **point estimate** is >= X (its 95 % CI is shown,
  not used). The comparison with the published version is shown when it can be made.
- ``no_worse_than_published_by δ``: non-inferiority, pass when the **lower bound** of the paired
  bootstrap's 95 % CI of Δ = candidate − published is >= −δ. With no published version the
  rule has nothing to compare with and passes, saying so.

A metric that is undefined (a 0/0, recall at FPR of a label signal) fails with its reason.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q

from evaluation.models import Comparison, Evaluation, SignalOutputType, SignalVersion
from evaluation.services.comparisons import ComparisonInvalid, ComparisonOptions, comparison_create_unchecked
from goldsets.models import GoldenSetVersion, GoldenSetVersionStatus
from policies.gate import GateProblem, PublishGateSpec, publish_gate_from_data
from policies.models import PolicyVersion
from policies.prepublish import PUBLISH_GATE, PrepublishVerdict
from policies.selectors import policy_version_published
from touchstone.errors import ApplicationError
from touchstone.roles import permission_require


@dataclass
class GateVerdict:
    """Everything the CLI, the confirmation page and the audit event say about one verdict."""

    policy: str
    candidate: str
    gate: dict[str, Any] | None
    rule: str = ""
    metric: str = ""
    golden_set_version: str | None = None
    golden_set_version_id: int | None = None
    candidate_signal_version: str | None = None
    candidate_evaluation: int | None = None
    candidate_value: dict[str, Any] | None = None  # value, ci_low, ci_high
    published: str | None = None
    published_signal_version: str | None = None
    published_evaluation: int | None = None
    published_value: dict[str, Any] | None = None
    comparison: int | None = None
    delta: dict[str, Any] | None = None  # delta, ci_low, ci_high, a, b
    passed: bool = False
    reason: str = ""
    missing: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        and math.isfinite(value) else None


def _fmt(value: float | None, signed: bool = False) -> str:
    return "—" if value is None else (f"{value:+.3f}" if signed else f"{value:.3f}")


def estimate_line(e: dict[str, Any] | None) -> str:
    """``0.812 [0.771, 0.850]`` or ``undefined (reason)``."""
    if not e or e.get("value") is None:
        return f"undefined ({(e or {}).get('reason') or 'no data'})"
    ci = f" [{_fmt(e.get('ci_low'))}, {_fmt(e.get('ci_high'))}]" if e.get("ci_low") is not None else " (no CI)"
    return _fmt(e["value"]) + ci


def delta_line(d: dict[str, Any] | None) -> str:
    """``+0.031 [-0.004, +0.066] (published 0.712 → candidate 0.743)`` or ``undefined (reason)``."""
    if not d or d.get("delta") is None:
        return f"undefined ({(d or {}).get('reason') or 'no data'})"
    ci = (f" [{_fmt(d.get('ci_low'), True)}, {_fmt(d.get('ci_high'), True)}]" if d.get("ci_low") is not None
          else " (no CI)")
    return f"{_fmt(d['delta'], True)}{ci} (published {_fmt(d.get('a'))} → candidate {_fmt(d.get('b'))})"


# --- reading a metric out of stored documents ----------------------------------------------------

def evaluation_metric(document: dict[str, Any], gate: PublishGateSpec) -> dict[str, Any]:
    """The gate's metric in an Evaluation document: ``{"value", "ci_low", "ci_high", "reason"}``."""
    metric, label = gate.metric, gate.label
    if metric == "recall_at_fpr":
        scores = document.get("scores")
        if document.get("positive") != label:
            return {"value": None, "reason": f"recall at FPR is measured on the signal's own question "
                                              f"({document.get('positive')!r}), not on {label!r}"}
        if not scores:
            return {"value": None, "reason": "recall at FPR needs a score signal; a label signal (a labeling run) "
                                              "has no score to move a threshold on: gate on f1, precision or recall"}
        row = scores["recall_at_fpr"]
        if _num(row.get("max_fpr")) != gate.max_fpr:
            return {"value": None, "reason": f"the evaluation measured recall at FPR <= {row.get('max_fpr')}, the "
                                              f"gate needs FPR <= {gate.max_fpr:g} (evaluate with --max-fpr "
                                              f"{gate.max_fpr:g})"}
    elif document.get("positive") == label:
        row = document["binary"][metric]
    else:
        rows = [r for r in document.get("per_label") or [] if r.get("label") == label]
        if not rows:
            return {"value": None, "reason": f"the evaluation has no per-label row for {label!r}"}
        row = rows[0][metric]
    return {"value": _num(row.get("value")), "ci_low": _num(row.get("ci_low")), "ci_high": _num(row.get("ci_high")),
            "reason": row.get("reason")}


def comparison_metric(document: dict[str, Any], gate: PublishGateSpec) -> dict[str, Any]:
    """The gate's metric's Δ in a Comparison document: ``{"delta", "ci_low", "ci_high", "a", "b",
    "reason"}`` (B − A = candidate − published)."""
    metric, label = gate.metric, gate.label
    if document.get("positive") == label:
        row = document["binary"][metric]
        if metric == "recall_at_fpr" and _num(document.get("max_fpr")) != gate.max_fpr:
            return {"delta": None, "reason": f"the comparison used FPR <= {document.get('max_fpr')}, the gate needs "
                                              f"{gate.max_fpr:g}"}
    else:
        rows = [r for r in document.get("per_label") or [] if r.get("label") == label]
        if not rows:
            return {"delta": None, "reason": document.get("per_label_reason")
                    or f"the comparison has no per-label row for {label!r}"}
        row = rows[0][metric]
    return {"delta": _num(row.get("delta")), "ci_low": _num(row.get("ci_low")), "ci_high": _num(row.get("ci_high")),
            "a": _num(row.get("a")), "b": _num(row.get("b")), "reason": row.get("reason")}


# --- finding the evidence ------------------------------------------------------------------------

def _golden_set_version(gate: PublishGateSpec) -> GoldenSetVersion | None:
    versions = GoldenSetVersion.objects.filter(golden_set__name=gate.golden_set, status=GoldenSetVersionStatus.FROZEN)
    if gate.version is not None:
        versions = versions.filter(number=gate.version)
    return versions.select_related("golden_set", "policy_version__policy").order_by("-number").first()


def _evaluations(policy_version: PolicyVersion, golden: GoldenSetVersion) -> list[Evaluation]:
    """Evaluations on ``golden`` of signal versions made with a prompt of ``policy_version``, newest first."""
    return list(Evaluation.objects.filter(golden_set_version=golden)
                .filter(Q(signal_version__prompt_version__policy_version=policy_version))
                .select_related("signal_version__signal", "signal_version__prompt_version__template_version")
                .order_by("-created_at", "-pk"))


def _like(evaluation: Evaluation, other: Evaluation) -> bool:
    """Both signal versions labelled with the same prompt template and model (the fair pair)."""
    a, b = evaluation.signal_version.prompt_version, other.signal_version.prompt_version
    return a is not None and b is not None and (a.template_version.template_id, a.model) == (
        b.template_version.template_id, b.model)


def _best(evaluations: list[Evaluation], gate: PublishGateSpec,
          like: Evaluation | None = None) -> tuple[Evaluation, dict[str, Any]] | None:
    """The newest evaluation whose document gives the metric, else the newest (with its reason).
    ``like``: prefer those made with the same prompt template and model as it (the published
    side is paired with the candidate's)."""
    if not evaluations:
        return None
    if like is not None:
        evaluations = sorted(evaluations, key=lambda e: not _like(e, like))  # stable: newest first within each
    for evaluation in evaluations:
        value = evaluation_metric(evaluation.document, gate)
        if value["value"] is not None:
            return evaluation, value
    return evaluations[0], evaluation_metric(evaluations[0].document, gate)


def _comparison_options(gate: PublishGateSpec, a: SignalVersion, b: SignalVersion) -> ComparisonOptions:
    any_score = SignalOutputType.SCORE in (a.signal.output_type, b.signal.output_type)
    return ComparisonOptions(max_fpr=gate.max_fpr if gate.metric == "recall_at_fpr" and any_score else None)


def _comparison(gate: PublishGateSpec, a: SignalVersion, b: SignalVersion, golden: GoldenSetVersion,
                acting_user: AbstractBaseUser | None, compute: bool) -> tuple[Comparison | None, str]:
    """The newest stored comparison of (a, b) on ``golden`` with the gate's options, else (when
    ``compute``) a new one. Returns (comparison or None, why none)."""
    options = _comparison_options(gate, a, b)
    wanted = {k: v for k, v in options.as_json().items() if k in ("threshold", "target_precision", "max_fpr")}
    for comparison in Comparison.objects.filter(signal_version_a=a, signal_version_b=b,
                                                golden_set_version=golden).order_by("-created_at", "-pk"):
        if all(comparison.options.get(k) == v for k, v in wanted.items()):
            return comparison, ""
    if not compute:
        return None, f"no comparison of {b} with {a} on {golden} yet"
    try:
        return comparison_create_unchecked(signal_version_a=a, signal_version_b=b, golden_set_version=golden,
                                           options=options, acting_user=acting_user), ""
    except ComparisonInvalid as exc:
        return None, f"cannot compare {b} with {a}: {exc.message}"


def _evaluate_hint(policy_version: PolicyVersion, golden: GoldenSetVersion, gate: PublishGateSpec) -> str:
    fpr = f" --max-fpr {gate.max_fpr:g}" if gate.metric == "recall_at_fpr" else ""
    return (f"label the golden set with a prompt of {policy_version} (`manage.py run create NAME --golden-set "
            f"{golden.golden_set.name}@{golden.number} --prompt SHA --voter …`, then start it) and evaluate the "
            f"run's signal version (`manage.py evaluate llm-{policy_version.policy.slug}@N --golden-set "
            f"{golden.golden_set.name}@{golden.number}{fpr}`)")


def publish_gate_verdict(*, version: PolicyVersion, acting_user: AbstractBaseUser | None,
                         compute: bool = True) -> GateVerdict | None:
    """The verdict of ``version``'s policy's publish gate on ``version``, or None when the policy
    has no gate. ``compute``: make and store the comparison with the published version when
    none is stored (see the module docstring for the evidence and the rules)."""
    policy = version.policy
    if not policy.publish_gate:
        return None
    verdict = GateVerdict(policy=policy.slug, candidate=str(version), gate=policy.publish_gate)
    try:
        gate = publish_gate_from_data(policy.publish_gate)
    except GateProblem as exc:
        verdict.reason = f"the stored publish gate is invalid: {exc}"
        return verdict
    verdict.rule, verdict.metric = gate.rule_text, gate.metric_text
    golden = _golden_set_version(gate)
    if golden is None:
        verdict.missing.append(f"golden set {gate.golden_set_ref}")
        verdict.reason = f"golden set {gate.golden_set_ref} has no frozen version"
        return verdict
    verdict.golden_set_version, verdict.golden_set_version_id = str(golden), golden.pk

    found = _best(_evaluations(version, golden), gate)
    if found is None:
        verdict.missing.append(f"an evaluation of {version}'s prompt on {golden}")
        verdict.reason = f"no evaluation of a prompt of {version} on {golden}: {_evaluate_hint(version, golden, gate)}"
    else:
        evaluation, value = found
        verdict.candidate_signal_version = str(evaluation.signal_version)
        verdict.candidate_evaluation, verdict.candidate_value = evaluation.pk, value

    published = policy_version_published(policy=policy)
    comparison_reason = ""
    if published is not None and published.pk != version.pk:
        verdict.published = str(published)
        found_published = _best(_evaluations(published, golden), gate, like=found[0] if found else None)
        if found_published is None:
            comparison_reason = f"no evaluation of a prompt of the published {published} on {golden}"
            if gate.rule == "no_worse_than_published_by":
                verdict.missing.append(f"an evaluation of the published {published}'s prompt on {golden}")
                comparison_reason += ": " + _evaluate_hint(published, golden, gate)
        else:
            published_evaluation, published_value = found_published
            verdict.published_signal_version = str(published_evaluation.signal_version)
            verdict.published_evaluation, verdict.published_value = published_evaluation.pk, published_value
            if found is not None:
                comparison, comparison_reason = _comparison(
                    gate, published_evaluation.signal_version, found[0].signal_version, golden, acting_user, compute)
                if comparison is not None:
                    verdict.comparison = comparison.pk
                    verdict.delta = comparison_metric(comparison.document, gate)

    if found is None:
        return verdict
    if gate.rule == "at_least":
        value = verdict.candidate_value["value"] if verdict.candidate_value else None
        if value is None:
            verdict.reason = f"the candidate's {gate.metric_text} is undefined: {verdict.candidate_value['reason']}"
        else:
            verdict.passed = value >= gate.value
            verdict.reason = (f"the candidate's {gate.metric_text} is {value:.3f} "
                              f"{'>=' if verdict.passed else '<'} {gate.value:g}")
        return verdict
    if published is None:
        verdict.passed = True
        verdict.reason = f"no version of {policy.slug} is published: there is nothing to be no worse than"
        return verdict
    if verdict.delta is None:
        verdict.reason = comparison_reason or "no comparison with the published version"
        return verdict
    low = verdict.delta.get("ci_low")
    if low is None:
        why = verdict.delta.get("reason") or "the bootstrap interval is undefined"
        verdict.reason = f"Δ{gate.metric} has no lower bound: {why}"
        return verdict
    verdict.passed = low >= -gate.value
    verdict.reason = (f"the lower 95 % bound of Δ{gate.metric} (candidate − published) is {low:+.3f} "
                      f"{'>=' if verdict.passed else '<'} −{gate.value:g}")
    return verdict


def publish_gate_check(*, version: PolicyVersion, acting_user: AbstractBaseUser) -> GateVerdict | None:
    """``publish_gate_verdict`` for a person (``gate check``, the pages): anyone who may read
    policy versions; the comparison it may compute is stored with them as its author.
    Raises PermissionDenied."""
    permission_require(acting_user, "policies.view_policyversion", to="check a publish gate")
    return publish_gate_verdict(version=version, acting_user=acting_user)


def _rows(verdict: GateVerdict) -> list[tuple[str, str, str]]:
    """(label, text, link) lines for the approver's confirmation page."""
    rows = [("Rule", verdict.rule, ""), ("Golden set", verdict.golden_set_version or "—", "")]
    if verdict.candidate_evaluation is not None:
        rows.append((f"Candidate ({verdict.candidate_signal_version})",
                     f"{verdict.metric}: {estimate_line(verdict.candidate_value)} · evaluation "
                     f"#{verdict.candidate_evaluation}", f"/evaluations/{verdict.candidate_evaluation}/"))
    if verdict.published_evaluation is not None:
        rows.append((f"Published {verdict.published} ({verdict.published_signal_version})",
                     f"{verdict.metric}: {estimate_line(verdict.published_value)} · evaluation "
                     f"#{verdict.published_evaluation}", f"/evaluations/{verdict.published_evaluation}/"))
    if verdict.comparison is not None:
        rows.append(("Δ candidate − published (paired bootstrap, 95 %)",
                     f"{verdict.metric}: {delta_line(verdict.delta)} · comparison #{verdict.comparison}",
                     f"/comparisons/{verdict.comparison}/"))
    rows += [("Missing", text, "") for text in verdict.missing]
    rows.append(("Verdict", ("PASS: " if verdict.passed else "FAIL: ") + verdict.reason, ""))
    return rows


def publish_gate_prepublish_check(version: PolicyVersion, acting_user: AbstractBaseUser | None
                                  ) -> PrepublishVerdict | None:
    """The pre-publish check :mod:`policies.prepublish` runs (registered in ``apps.py``)."""
    try:
        verdict = publish_gate_verdict(version=version, acting_user=acting_user)
    except ApplicationError as exc:  # reported as a failed gate, never as a publish that slips through
        return PrepublishVerdict(check=PUBLISH_GATE, passed=False, message=f"publish gate: {exc.message}")
    if verdict is None:
        return None
    message = f"publish gate ({verdict.metric} on {verdict.golden_set_version or verdict.gate}) " \
              f"{'passed' if verdict.passed else 'failed'}: {verdict.reason}"
    return PrepublishVerdict(check=PUBLISH_GATE, passed=verdict.passed, message=message, rows=_rows(verdict),
                             details=verdict.as_json())
