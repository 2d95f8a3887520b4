"""Reads of signals, their versions, scores and score imports."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Max, Q, QuerySet
from django.db.models.fields.json import KeyTransform

from evaluation.models import (
    Comparison,
    Evaluation,
    Signal,
    SignalOutputType,
    SignalScore,
    SignalScoreImport,
    SignalVersion,
)
from runs.models import Judgement, RunVoter
from touchstone.errors import NotFound


def signal_list() -> QuerySet[Signal]:
    """Every signal with its policy, owner and number of versions (one query)."""
    return (Signal.objects.select_related("policy", "owner")
            .annotate(version_count=Count("versions", distinct=True)).order_by("name"))


def signal_get(*, name: str) -> Signal:
    signal = Signal.objects.select_related("policy", "owner", "created_by").filter(name=name).first()
    if signal is None:
        raise NotFound(f"No signal {name!r}.")
    return signal


def signal_version_list(*, signal: Signal) -> QuerySet[SignalVersion]:
    """The versions of ``signal``, newest first, each with ``score_count`` (one query)."""
    return (SignalVersion.objects.filter(signal=signal)
            .select_related("signal", "policy_version__policy", "labeling_run", "prompt_version", "created_by")
            .annotate(score_count=Count("scores")).order_by("-number"))


def signal_version_get(*, name: str, number: int | None = None) -> SignalVersion:
    """``name@number``, or the newest version when ``number`` is None. Raises NotFound."""
    versions = signal_version_list(signal=signal_get(name=name))
    version = versions.filter(number=number).first() if number is not None else versions.first()
    if version is None:
        raise NotFound(f"No version {number} of signal {name!r}." if number is not None
                       else f"Signal {name!r} has no version yet.")
    return version


def signal_version_get_by_ref(ref: str) -> SignalVersion:
    """Parse ``NAME@V`` (or ``NAME`` for the newest version). Raises NotFound."""
    name, _, number = ref.partition("@")
    if number and not number.isdigit():
        raise NotFound(f"{ref!r}: the version after '@' must be a number.")
    return signal_version_get(name=name, number=int(number) if number else None)


def signal_version_summary(*, version: SignalVersion) -> dict[str, Any]:
    """Counts of a version's scores: rows, rows with a score, rows per label (two queries)."""
    scores = SignalScore.objects.filter(version=version)
    totals = scores.aggregate(rows=Count("id"), scored=Count("id", filter=Q(score__isnull=False)))
    labels = dict(scores.exclude(label="").values_list("label").annotate(n=Count("id")).values_list("label", "n"))
    return {"rows": totals["rows"], "with_score": totals["scored"], "labels": dict(sorted(labels.items()))}


def signal_score_import_list(*, version: SignalVersion, limit: int = 20) -> list[SignalScoreImport]:
    return list(SignalScoreImport.objects.filter(version=version).select_related("started_by")
                .order_by("-started_at", "-pk")[:limit])


def signal_version_score_extent(*, version: SignalVersion) -> tuple[int, int | None]:
    """(number of scores, largest score id) of ``version`` now. Scores are append-only, so the
    scores with id <= that largest id are exactly the ones an evaluation started now uses."""
    row = SignalScore.objects.filter(version=version).aggregate(n=Count("id"), top=Max("id"))
    return row["n"], row["top"]


def signal_version_scores_upto(*, version: SignalVersion,
                               max_score_id: int | None) -> dict[int, tuple[float | None, str]]:
    """{item id: (score, label)} of the version's scores with id <= ``max_score_id``, streamed."""
    if max_score_id is None:
        return {}
    rows = (SignalScore.objects.filter(version=version, id__lte=max_score_id).order_by()
            .values_list("item_id", "score", "label").iterator(chunk_size=10_000))
    return {item_id: (score, label) for item_id, score, label in rows}


def labeling_run_item_notes(*, run_id: int, item_ids: list[int]) -> dict[int, dict[str, Any]]:
    """What the voters of a labeling run said about these items: {item id: {"rule_ids": sorted
    union of the voters' violated rule ids, "votes": [{"voter", "label", "confidence",
    "rationale"}]}} (a signal version made from a run reads its rationale here)."""
    notes: dict[int, dict[str, Any]] = {}
    for start in range(0, len(item_ids), 5_000):
        rows = (Judgement.objects.filter(run_id=run_id, item_id__in=item_ids[start:start + 5_000])
                .order_by("item_id", "voter__position")
                .values_list("item_id", "voter__position", "voter__model", "label", "confidence", "rationale",
                             "violated_rule_ids"))
        for item_id, position, model, label, confidence, rationale, rules in rows:
            entry = notes.setdefault(item_id, {"rule_ids": set(), "votes": []})
            entry["rule_ids"].update(str(rule) for rule in (rules or []))
            entry["votes"].append({"voter": f"#{position} {model}", "label": label, "confidence": confidence,
                                   "rationale": rationale})
    for entry in notes.values():
        entry["rule_ids"] = sorted(entry["rule_ids"])
    return notes


def evaluation_list(*, signal_version: SignalVersion | None = None, signal_name: str | None = None,
                    signal_number: int | None = None, golden_set_name: str | None = None) -> QuerySet[Evaluation]:
    """Evaluations, newest first, with their versions (one query), without the document;
    narrowed to a signal version, a signal (and version number) or a golden set by name."""
    evaluations = Evaluation.objects.select_related(
        "signal_version__signal", "golden_set_version__golden_set", "created_by").defer("document")
    if signal_version is not None:
        evaluations = evaluations.filter(signal_version=signal_version)
    if signal_name:
        evaluations = evaluations.filter(signal_version__signal__name=signal_name)
    if signal_number is not None:
        evaluations = evaluations.filter(signal_version__number=signal_number)
    if golden_set_name:
        evaluations = evaluations.filter(golden_set_version__golden_set__name=golden_set_name)
    return evaluations.order_by("-created_at", "-pk")


def evaluation_get(*, evaluation_id: int) -> Evaluation:
    """One evaluation with its document. Raises NotFound."""
    evaluation = (Evaluation.objects.select_related("signal_version__signal", "golden_set_version__golden_set",
                                                    "created_by").filter(pk=evaluation_id).first())
    if evaluation is None:
        raise NotFound(f"No evaluation {evaluation_id}.")
    return evaluation


def signal_version_simulated_voters(version: SignalVersion) -> list[str]:
    """The simulator voters behind a version made from a labeling run ("model@endpoint"), so pages
    and commands can say the signal's output is simulated; for a version without a run whose
    signal or notes declare it SIMULATED (see ``signal_declared_simulated``), a one-item list
    saying so; empty for every other version."""
    if version.labeling_run_id is None:
        if signal_declared_simulated(signal=version.signal, version=version):
            return [f"{version.signal.name} (declared SIMULATED: no model made these scores)"]
        return []
    return [f"{model}@{endpoint}" for model, endpoint in version.labeling_run.voters.filter(
        endpoint__is_simulator=True).order_by("position").values_list("model", "endpoint__name")]


SIMULATED_MARK = "SIMULATED"


def signal_declared_simulated(*, signal: Signal, version: SignalVersion | None = None) -> bool:
    """A signal (or one of its versions) whose description or notes start with "SIMULATED" says
    its output is made up (the demo's production classifier), even without a labeling run."""
    texts = [signal.description] + ([version.notes] if version is not None else [])
    return any(text.lstrip().upper().startswith(SIMULATED_MARK) for text in texts)


def signal_versions_simulated_voters(*, versions: list[SignalVersion]) -> dict[int, list[str]]:
    """{version id: its labeling run's simulator voters ("model@endpoint")} for many versions in
    one query (the signal page's table); versions without a run or simulator voters are left out."""
    by_run: dict[int, list[int]] = {}
    for version in versions:
        if version.labeling_run_id is not None:
            by_run.setdefault(version.labeling_run_id, []).append(version.pk)
    if not by_run:
        return {}
    out: dict[int, list[str]] = {}
    for run_id, model, endpoint in (RunVoter.objects.filter(run_id__in=by_run, endpoint__is_simulator=True)
                                    .order_by("run_id", "position").values_list("run_id", "model", "endpoint__name")):
        for version_id in by_run[run_id]:
            out.setdefault(version_id, []).append(f"{model}@{endpoint}")
    return out


def signal_evaluation_history(*, signal: Signal) -> list[Evaluation]:
    """The signal's evaluations, oldest first (one query, without the document), each with
    ``headline``: the estimate the signal page plots ({"value", "ci_low", "ci_high", ...} or None)
    — F1 of the positive class for a label signal, ROC AUC for a score signal."""
    path = ("binary", "f1") if signal.output_type == SignalOutputType.LABEL else ("scores", "roc_auc")
    return list(Evaluation.objects.filter(signal_version__signal=signal)
                .select_related("signal_version", "golden_set_version__golden_set", "created_by")
                .defer("document")
                .annotate(headline=KeyTransform(path[1], KeyTransform(path[0], "document")))
                .order_by("created_at", "pk"))


def comparison_list(*, signal_name: str | None = None, golden_set_name: str | None = None) -> QuerySet[Comparison]:
    """Comparisons, newest first, with their versions (one query), without the document;
    narrowed to those with a signal (as A or B) or a golden set, by name."""
    comparisons = Comparison.objects.select_related(
        "signal_version_a__signal", "signal_version_b__signal", "golden_set_version__golden_set",
        "created_by").defer("document")
    if signal_name:
        comparisons = comparisons.filter(Q(signal_version_a__signal__name=signal_name)
                                         | Q(signal_version_b__signal__name=signal_name))
    if golden_set_name:
        comparisons = comparisons.filter(golden_set_version__golden_set__name=golden_set_name)
    return comparisons.order_by("-created_at", "-pk")


def comparison_get(*, comparison_id: int) -> Comparison:
    """One comparison with its document. Raises NotFound."""
    comparison = (Comparison.objects.select_related(
        "signal_version_a__signal", "signal_version_b__signal", "golden_set_version__golden_set", "created_by")
        .filter(pk=comparison_id).first())
    if comparison is None:
        raise NotFound(f"No comparison {comparison_id}.")
    return comparison
