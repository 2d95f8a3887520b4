"""Evaluate a signal version against a frozen golden-set version and store the immutable result.

What is used: the golden-set version's gold items (all of them, whatever their number), and
the signal version's scores that exist when the evaluation starts (scores are append-only: the
evaluation records their count and largest id and reads only those). A gold item without a
usable row (no row, or a label signal's row without a label, or a score signal's row without a
score) is not scored: it is counted and the first ones listed under ``coverage`` and left out
of every metric. The metrics and their conventions are in :mod:`evaluation.metrics`.
"""

from __future__ import annotations

import importlib.metadata
import math
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from evaluation.metrics import Inputs, Options, error_groups, evaluation_document, slice_keys
from evaluation.models import VIOLATING, Evaluation, SignalOutputType, SignalVersion
from evaluation.selectors import labeling_run_item_notes, signal_version_score_extent, signal_version_scores_upto
from goldsets.models import GoldenSetVersion, GoldenSetVersionStatus
from goldsets.selectors import goldset_version_gold_rows
from policies.selectors import policy_version_spec
from touchstone.audit import audit_event_record
from touchstone.errors import ApplicationError
from touchstone.roles import permission_require

UNSCORED_SHOWN = 20
MAX_RESAMPLES = 10_000
DEFAULT_RESAMPLES = 1000


class EvaluationInvalid(ApplicationError):
    """Bad options or inputs: the message starts with the field, ``extra["field"]`` names it."""

    code = "invalid_evaluation"
    status = 400

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}", extra={"field": field, "reason": reason})


@dataclass(frozen=True)
class EvaluationOptions:
    """What an evaluation may be asked. At most one of ``threshold``, ``target_precision`` and
    ``max_fpr`` (the three ways to choose the operating threshold; score signals only), each in
    [0, 1]. ``violating_labels`` default: the golden-set version's labels marked as violations."""

    threshold: float | None = None
    target_precision: float | None = None
    max_fpr: float | None = None
    slice_by: str = ""
    violating_labels: tuple[str, ...] | None = None
    n_resamples: int = DEFAULT_RESAMPLES
    seed: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "target_precision": self.target_precision, "max_fpr": self.max_fpr,
                "slice_by": self.slice_by or None,
                "violating_labels": list(self.violating_labels) if self.violating_labels is not None else None,
                "bootstrap": {"resamples": self.n_resamples, "seed": self.seed, "confidence": 0.95}}


def _check_options(options: EvaluationOptions, *, output_type: str, taxonomy: list[str]) -> None:
    chosen = [name for name in ("threshold", "target_precision", "max_fpr") if getattr(options, name) is not None]
    if len(chosen) > 1:
        raise EvaluationInvalid(chosen[1], f"give at most one of threshold, target_precision and max_fpr "
                                           f"(got {', '.join(chosen)})")
    for name in chosen:
        value = getattr(options, name)
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value) \
                or not 0 <= value <= 1:
            raise EvaluationInvalid(name, f"{value!r} is not a number in [0, 1]")
        if output_type == SignalOutputType.LABEL:
            raise EvaluationInvalid(name, "a label signal has no threshold: its label is its prediction")
    if len(options.slice_by) > 100:
        raise EvaluationInvalid("slice_by", "at most 100 characters")
    if not isinstance(options.n_resamples, int) or not 1 <= options.n_resamples <= MAX_RESAMPLES:
        raise EvaluationInvalid("n_resamples", f"{options.n_resamples!r}: a whole number from 1 to {MAX_RESAMPLES}")
    if not isinstance(options.seed, int) or options.seed < 0:
        raise EvaluationInvalid("seed", f"{options.seed!r}: a whole number >= 0")
    if options.violating_labels is not None:
        if not options.violating_labels:
            raise EvaluationInvalid("violating_labels", "name at least one label")
        unknown = sorted(set(options.violating_labels) - set(taxonomy))
        if unknown:
            raise EvaluationInvalid("violating_labels", f"{', '.join(unknown)} not in the golden set's labels "
                                                        f"({', '.join(taxonomy)})")


def code_version() -> dict[str, Any]:
    """touchstone's package version and the git commit of the code, or why there is none."""
    try:
        package = importlib.metadata.version("touchstone")
    except importlib.metadata.PackageNotFoundError:
        package = None
    base = Path(settings.BASE_DIR)
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=base, capture_output=True, text=True, timeout=5,
                              check=False)
        commit = done.stdout.strip() if done.returncode == 0 else None
        reason = None if commit else (done.stderr.strip() or "not a git checkout")
    except (OSError, subprocess.TimeoutExpired) as exc:
        commit, reason = None, f"git unavailable: {exc}"
    return {"touchstone": package, "commit": commit, "commit_reason": reason}


@dataclass
class _Gathered:
    refs: list[str]
    item_ids: list[int]
    gold: list[str]
    predicted: list[str]
    scores: list[float]
    slices: list[Any]
    gold_rules: list[tuple[str, ...]]
    gold_items: int
    unscored: int
    unscored_items: list[str]


def _gather(golden_set_version: GoldenSetVersion, scores: dict[int, tuple[float | None, str]], *,
            output_type: str, slice_by: str) -> _Gathered:
    out = _Gathered([], [], [], [], [], [], [], 0, 0, [])
    for row in goldset_version_gold_rows(version=golden_set_version):
        out.gold_items += 1
        score, label = scores.get(row.item_id, (None, ""))
        usable = (score is not None) if output_type == SignalOutputType.SCORE else bool(label)
        if not usable:
            out.unscored += 1
            if len(out.unscored_items) < UNSCORED_SHOWN:
                out.unscored_items.append(f"{row.source}:{row.external_id}")
            continue
        out.refs.append(f"{row.source}:{row.external_id}")
        out.item_ids.append(row.item_id)
        out.gold.append(row.gold_label)
        out.predicted.append(label)
        out.scores.append(math.nan if score is None else score)
        out.slices.append(row.metadata.get(slice_by) if slice_by else None)
        out.gold_rules.append(row.rule_ids)
    return out


def _examples(golden_set_version: GoldenSetVersion, errors: dict, gathered: _Gathered,
              notes: dict[int, dict[str, Any]]) -> dict[str, dict]:
    """The example items of the error groups: gold label, human labels, the LLM decision (if
    the golden set froze one) and the signal's voters' rationale (signals from labeling runs)."""
    kinds = (errors["false_negatives"], errors["false_positives"])
    refs = {ref for kind in kinds for group in (*kind["by_rule"], *kind["by_label"]) for ref in group["examples"]}
    position = {ref: i for i, ref in enumerate(gathered.refs) if ref in refs}
    wanted = [gathered.item_ids[i] for i in position.values()]
    out = {}
    for row in goldset_version_gold_rows(version=golden_set_version, item_ids=wanted, details=True):
        ref = f"{row.source}:{row.external_id}"
        i = position[ref]
        llm = row.llm or None
        out[ref] = {
            "item_id": row.item_id, "gold_label": row.gold_label,
            "signal": {"label": gathered.predicted[i] or None,
                       "score": None if math.isnan(gathered.scores[i]) else gathered.scores[i]},
            "human_labels": [{"vendor": lb.get("vendor"), "role": lb.get("role"), "label": lb.get("label"),
                              "rule_ids": lb.get("rule_ids")} for lb in (row.labels or [])],
            "llm": None if llm is None else {"run": llm.get("run"), "label": llm.get("label"),
                                             "confidence": llm.get("confidence"), "outcome": llm.get("outcome"),
                                             "votes": llm.get("votes")},
            "rationale": notes.get(row.item_id, {}).get("votes"),
        }
    return out


def evaluation_create(*, signal_version: SignalVersion, golden_set_version: GoldenSetVersion,
                      options: EvaluationOptions, acting_user: AbstractBaseUser) -> Evaluation:
    """Evaluate ``signal_version`` on ``golden_set_version`` and store the immutable Evaluation.

    Conventions (see :mod:`evaluation.metrics`): positive when ``score >= threshold``; a 0/0 is
    None with a reason; Wilson intervals without continuity correction for proportions;
    percentile bootstrap over items, seeded, for F1, AUPRC, ROC AUC, recall at FPR, the threshold
    at a target precision and κ. The computation runs outside any transaction (it only reads);
    the row and its audit event are written in one.

    Raises PermissionDenied, EvaluationInvalid (bad options; a golden-set version that is not
    frozen or of another policy; no gold item with a score)."""
    permission_require(acting_user, "evaluation.add_evaluation", to="evaluate signals")
    signal = signal_version.signal
    if golden_set_version.status != GoldenSetVersionStatus.FROZEN:
        raise EvaluationInvalid("golden_set", f"{golden_set_version} is not frozen")
    if golden_set_version.policy_version.policy_id != signal.policy_id:
        raise EvaluationInvalid("golden_set", f"{golden_set_version} is a golden set of policy "
                                              f"{golden_set_version.policy_version.policy.slug!r}, signal "
                                              f"{signal.name!r} is of {signal.policy.slug!r}")
    spec = policy_version_spec(golden_set_version.policy_version)
    taxonomy = [label.key for label in spec.labels]
    _check_options(options, output_type=signal.output_type, taxonomy=taxonomy)
    violating = (set(options.violating_labels) if options.violating_labels is not None
                 else {label.key for label in spec.labels if label.is_violation})
    positive = signal.score_label if signal.output_type == SignalOutputType.SCORE else VIOLATING
    positive_labels = frozenset(violating if positive == VIOLATING else {positive})

    score_count, max_score_id = signal_version_score_extent(version=signal_version)
    scores = signal_version_scores_upto(version=signal_version, max_score_id=max_score_id)
    gathered = _gather(golden_set_version, scores, output_type=signal.output_type, slice_by=options.slice_by)
    del scores
    if not gathered.gold:
        raise EvaluationInvalid("signal", f"{signal_version} has no usable score for any of the "
                                          f"{gathered.gold_items} items of {golden_set_version}")
    seen = set(gathered.gold) | set(gathered.predicted) - {""}
    labels = taxonomy + sorted(seen - set(taxonomy))
    truth = np.fromiter((g in positive_labels for g in gathered.gold), dtype=bool, count=len(gathered.gold))
    inputs = Inputs(gold=gathered.gold, truth=truth, kind=signal.output_type, positive=positive, labels=labels,
                    positive_labels=positive_labels,
                    predicted=gathered.predicted if signal.output_type == SignalOutputType.LABEL else None,
                    scores=np.asarray(gathered.scores, dtype=np.float64),
                    slices=slice_keys(gathered.slices) if options.slice_by else None)
    try:
        document, predicted = evaluation_document(inputs, Options(
            threshold=options.threshold, target_precision=options.target_precision, max_fpr=options.max_fpr,
            n_resamples=options.n_resamples, seed=options.seed))
    except ValueError as exc:  # the statistics refused the data (e.g. a score outside [0, 1])
        raise EvaluationInvalid("signal", str(exc)) from None

    notes: dict[int, dict[str, Any]] = {}
    errors_mask = truth != predicted
    if signal_version.labeling_run_id is not None:
        notes = labeling_run_item_notes(run_id=signal_version.labeling_run_id,
                                        item_ids=[gathered.item_ids[i] for i in np.flatnonzero(errors_mask)])
    signal_rules = ([tuple(notes.get(item_id, {}).get("rule_ids", ())) for item_id in gathered.item_ids]
                    if notes else None)
    errors = error_groups(refs=gathered.refs, truth=truth, predicted=predicted, gold=gathered.gold,
                          signal_labels=gathered.predicted if signal.output_type == SignalOutputType.LABEL else None,
                          gold_rule_ids=gathered.gold_rules, signal_rule_ids=signal_rules)
    errors["rule_ids_from"] = ["gold labels", *(["signal (its labeling run's voters)"] if notes else [])]
    errors["examples"] = _examples(golden_set_version, errors, gathered, notes)
    document["errors"] = errors
    document["coverage"] = {
        "gold_items": gathered.gold_items, "scored": len(gathered.gold), "unscored": gathered.unscored,
        "unscored_items": gathered.unscored_items, "unscored_shown": min(gathered.unscored, UNSCORED_SHOWN),
        "share_scored": len(gathered.gold) / gathered.gold_items,
    }
    document["conventions"] = {
        "positive": "score >= threshold", "zero_over_zero": "None with a reason",
        "proportion_ci": "Wilson score interval, no continuity correction",
        "bootstrap": f"percentile, {options.n_resamples} resamples over items, seed {options.seed}"
                     + ("; stratified by slice for the slices" if options.slice_by else ""),
    }
    return _store(signal_version=signal_version, golden_set_version=golden_set_version, options=options,
                  code=code_version(), score_count=score_count, max_score_id=max_score_id, document=document,
                  acting_user=acting_user)


@transaction.atomic(durable=True)
def _store(*, signal_version: SignalVersion, golden_set_version: GoldenSetVersion, options: EvaluationOptions,
           code: dict[str, Any], score_count: int, max_score_id: int | None, document: dict,
           acting_user: AbstractBaseUser) -> Evaluation:
    evaluation = Evaluation.objects.create(
        signal_version=signal_version, golden_set_version=golden_set_version,
        golden_set_digest=golden_set_version.digest, options=options.as_json(), code_version=code,
        score_count=score_count, max_score_id=max_score_id, document=document, created_by=acting_user)
    binary = document["binary"]
    audit_event_record(actor=acting_user, event_type="evaluation.created", obj=evaluation, details={
        "signal_version": str(signal_version), "golden_set_version": str(golden_set_version),
        "digest": golden_set_version.digest, "scores_used": score_count, "max_score_id": max_score_id,
        "options": options.as_json(), "f1": binary["f1"]["value"], "coverage": document["coverage"]["scored"]})
    return evaluation
