"""Compare two signal versions on the same items of a frozen golden-set version, paired, and
store the immutable result.

What is used: the golden-set version's gold items and each version's scores that exist when
the comparison starts (their count and largest id are recorded). Only the items both versions
scored are compared; the items only one of them scored (and those neither scored) are counted,
the first ones listed under ``coverage``, and left out of every statistic. The statistics and
their conventions are in :mod:`evaluation.comparison`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from evaluation.comparison import Paired, Side, comparison_document
from evaluation.metrics import Options, slice_keys
from evaluation.models import VIOLATING, Comparison, SignalOutputType, SignalVersion
from evaluation.selectors import signal_version_score_extent, signal_version_scores_upto
from evaluation.services.evaluations import (
    DEFAULT_RESAMPLES,
    MAX_RESAMPLES,
    UNSCORED_SHOWN,
    EvaluationInvalid,
    code_version,
)
from goldsets.models import GoldenSetVersion, GoldenSetVersionStatus
from goldsets.selectors import goldset_version_gold_rows
from policies.selectors import policy_version_spec
from touchstone.audit import audit_event_record
from touchstone.roles import permission_require


class ComparisonInvalid(EvaluationInvalid):
    """Bad options or inputs of a comparison: the message starts with the field,
    ``extra["field"]`` names it."""

    code = "invalid_comparison"


@dataclass(frozen=True)
class ComparisonOptions:
    """What a comparison may be asked. At most one of ``threshold``, ``target_precision`` and
    ``max_fpr`` (each in [0, 1]): the threshold rule, applied to each score signal on its own.
    ``max_fpr`` also sets Δrecall@FPR's bound (default 0.01)."""

    threshold: float | None = None
    target_precision: float | None = None
    max_fpr: float | None = None
    slice_by: str = ""
    n_resamples: int = DEFAULT_RESAMPLES
    seed: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "target_precision": self.target_precision, "max_fpr": self.max_fpr,
                "slice_by": self.slice_by or None,
                "bootstrap": {"resamples": self.n_resamples, "seed": self.seed, "confidence": 0.95,
                              "paired": True}}


def _check_options(options: ComparisonOptions, *, any_score: bool) -> None:
    chosen = [name for name in ("threshold", "target_precision", "max_fpr") if getattr(options, name) is not None]
    if len(chosen) > 1:
        raise ComparisonInvalid(chosen[1], f"give at most one of threshold, target_precision and max_fpr "
                                           f"(got {', '.join(chosen)})")
    for name in chosen:
        value = getattr(options, name)
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value) \
                or not 0 <= value <= 1:
            raise ComparisonInvalid(name, f"{value!r} is not a number in [0, 1]")
        if not any_score:
            raise ComparisonInvalid(name, "two label signals have no threshold: their labels are their predictions")
    if len(options.slice_by) > 100:
        raise ComparisonInvalid("slice_by", "at most 100 characters")
    if not isinstance(options.n_resamples, int) or isinstance(options.n_resamples, bool) \
            or not 1 <= options.n_resamples <= MAX_RESAMPLES:
        raise ComparisonInvalid("n_resamples", f"{options.n_resamples!r}: a whole number from 1 to {MAX_RESAMPLES}")
    if not isinstance(options.seed, int) or isinstance(options.seed, bool) or options.seed < 0:
        raise ComparisonInvalid("seed", f"{options.seed!r}: a whole number >= 0")


def _positive(version: SignalVersion) -> str:
    signal = version.signal
    return signal.score_label if signal.output_type == SignalOutputType.SCORE else VIOLATING


def _check_versions(a: SignalVersion, b: SignalVersion, golden: GoldenSetVersion) -> None:
    if golden.status != GoldenSetVersionStatus.FROZEN:
        raise ComparisonInvalid("golden_set", f"{golden} is not frozen")
    for field, version in (("signal_a", a), ("signal_b", b)):
        if golden.policy_version.policy_id != version.signal.policy_id:
            raise ComparisonInvalid("golden_set", f"{golden} is a golden set of policy "
                                                  f"{golden.policy_version.policy.slug!r}, {field} {version} is of "
                                                  f"{version.signal.policy.slug!r}")
    if _positive(a) != _positive(b):
        raise ComparisonInvalid("signal_b", f"{b} answers {_positive(b)!r}, {a} answers {_positive(a)!r}: "
                                            "a comparison needs one binary question")


def _usable(row: tuple[float | None, str] | None, output_type: str) -> bool:
    if row is None:
        return False
    return row[0] is not None if output_type == SignalOutputType.SCORE else bool(row[1])


def _side(output_type: str, rows: list[tuple[float | None, str]]) -> Side:
    if output_type == SignalOutputType.SCORE:
        return Side(kind="score", scores=np.fromiter((r[0] for r in rows), dtype=np.float64, count=len(rows)))
    return Side(kind="label", labels=[r[1] for r in rows])


def comparison_create(*, signal_version_a: SignalVersion, signal_version_b: SignalVersion,
                      golden_set_version: GoldenSetVersion, options: ComparisonOptions,
                      acting_user: AbstractBaseUser) -> Comparison:
    """Compare ``signal_version_b`` with ``signal_version_a`` (B − A) on the items of
    ``golden_set_version`` both scored, and store the immutable Comparison.

    Conventions (see :mod:`evaluation.comparison`): positive when ``score >= threshold``, each
    score signal at its own threshold by the same rule; McNemar's exact test on correctness;
    paired percentile bootstrap (the same drawn items for A and B), seeded; a 0/0 is None with
    a reason. The computation runs outside any transaction (it only reads); the row and its
    audit event are written in one.

    Raises PermissionDenied, ComparisonInvalid (bad options; a golden-set version that is not
    frozen or of another policy; versions answering different questions; no item scored by
    both)."""
    permission_require(acting_user, "evaluation.add_evaluation", to="compare signals")
    return comparison_create_unchecked(signal_version_a=signal_version_a, signal_version_b=signal_version_b,
                                       golden_set_version=golden_set_version, options=options,
                                       acting_user=acting_user)


def comparison_create_unchecked(*, signal_version_a: SignalVersion, signal_version_b: SignalVersion,
                                golden_set_version: GoldenSetVersion, options: ComparisonOptions,
                                acting_user: AbstractBaseUser | None) -> Comparison:
    """``comparison_create`` without its permission check, for services that checked their own
    (the publish gate computes the comparison an approver's confirmation page shows)."""
    a, b = signal_version_a, signal_version_b
    _check_versions(a, b, golden_set_version)
    type_a, type_b = a.signal.output_type, b.signal.output_type
    _check_options(options, any_score=SignalOutputType.SCORE in (type_a, type_b))
    spec = policy_version_spec(golden_set_version.policy_version)
    taxonomy = [label.key for label in spec.labels]
    positive = _positive(a)
    violating = {label.key for label in spec.labels if label.is_violation}
    positive_labels = frozenset(violating if positive == VIOLATING else {positive})

    count_a, top_a = signal_version_score_extent(version=a)
    count_b, top_b = signal_version_score_extent(version=b)
    scores_a = signal_version_scores_upto(version=a, max_score_id=top_a)
    scores_b = signal_version_scores_upto(version=b, max_score_id=top_b)
    refs: list[str] = []
    item_ids: list[int] = []
    gold: list[str] = []
    raw_slices: list[Any] = []
    rows_a: list[tuple[float | None, str]] = []
    rows_b: list[tuple[float | None, str]] = []
    gold_items = 0
    only: dict[str, list[str]] = {"a": [], "b": [], "neither": []}
    for row in goldset_version_gold_rows(version=golden_set_version):
        gold_items += 1
        ref = f"{row.source}:{row.external_id}"
        got_a, got_b = scores_a.get(row.item_id), scores_b.get(row.item_id)
        usable_a, usable_b = _usable(got_a, type_a), _usable(got_b, type_b)
        if not (usable_a and usable_b):
            only["a" if usable_a else "b" if usable_b else "neither"].append(ref)
            continue
        assert got_a is not None and got_b is not None
        refs.append(ref)
        item_ids.append(row.item_id)
        gold.append(row.gold_label)
        rows_a.append(got_a)
        rows_b.append(got_b)
        raw_slices.append(row.metadata.get(options.slice_by) if options.slice_by else None)
    del scores_a, scores_b
    if not refs:
        raise ComparisonInvalid("signal_b", f"no item of {golden_set_version} was scored by both {a} and {b} "
                                            f"({gold_items} gold items; only {a}: {len(only['a'])}, only {b}: "
                                            f"{len(only['b'])})")
    seen = set(gold) | {r[1] for r in (*rows_a, *rows_b) if r[1]}
    paired = Paired(
        refs=refs, gold=gold, truth=np.fromiter((g in positive_labels for g in gold), dtype=bool, count=len(gold)),
        positive=positive, positive_labels=positive_labels, labels=taxonomy + sorted(seen - set(taxonomy)),
        a=_side(type_a, rows_a), b=_side(type_b, rows_b),
        slices=slice_keys(raw_slices) if options.slice_by else None, item_ids=item_ids)
    try:
        document = comparison_document(paired, Options(
            threshold=options.threshold, target_precision=options.target_precision, max_fpr=options.max_fpr,
            n_resamples=options.n_resamples, seed=options.seed))
    except ValueError as exc:  # the statistics refused the data
        raise ComparisonInvalid("signal_b", str(exc)) from None
    document["coverage"] = {
        "gold_items": gold_items, "both": len(refs), "only_a": len(only["a"]), "only_b": len(only["b"]),
        "neither": len(only["neither"]), "only_a_items": only["a"][:UNSCORED_SHOWN],
        "only_b_items": only["b"][:UNSCORED_SHOWN], "share_both": len(refs) / gold_items,
    }
    document["conventions"] = {
        "difference": "B − A", "positive": "score >= threshold (each score signal at its own threshold)",
        "zero_over_zero": "None with a reason", "mcnemar": "exact, two-sided, on correctness",
        "bootstrap": f"paired percentile, {options.n_resamples} resamples over items, seed {options.seed}"
                     + ("; each slice resampled on its own items" if options.slice_by else ""),
    }
    return _store(a=a, b=b, golden_set_version=golden_set_version, options=options, counts=(count_a, count_b),
                  tops=(top_a, top_b), code=code_version(), document=document, acting_user=acting_user)


@transaction.atomic(durable=True)
def _store(*, a: SignalVersion, b: SignalVersion, golden_set_version: GoldenSetVersion,
           options: ComparisonOptions, counts: tuple[int, int], tops: tuple[int | None, int | None],
           code: dict[str, Any], document: dict, acting_user: AbstractBaseUser | None) -> Comparison:
    comparison = Comparison.objects.create(
        signal_version_a=a, signal_version_b=b, golden_set_version=golden_set_version,
        golden_set_digest=golden_set_version.digest, options=options.as_json(), code_version=code,
        score_count_a=counts[0], max_score_id_a=tops[0], score_count_b=counts[1], max_score_id_b=tops[1],
        document=document, created_by=acting_user)
    binary, mcnemar = document["binary"], document["mcnemar"]
    audit_event_record(actor=acting_user, event_type="comparison.created", obj=comparison, details={
        "signal_version_a": str(a), "signal_version_b": str(b), "golden_set_version": str(golden_set_version),
        "digest": golden_set_version.digest, "scores_used": {"a": counts[0], "b": counts[1]},
        "options": options.as_json(), "items": document["items"], "delta_f1": binary["f1"]["delta"],
        "mcnemar_p": mcnemar["p_value"], "flips": {k: v["count"] for k, v in document["flips"].items()}})
    return comparison
