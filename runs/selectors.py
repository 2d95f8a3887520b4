"""Reads for labeling runs: the run, its progress counted in the database, its failures; and the
decisions and judgements made under a policy version, for the apps above."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

from django.db.models import Case, Count, DecimalField, OuterRef, Q, QuerySet, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce

from runs.models import (
    DecisionOutcome,
    ItemDecision,
    Judgement,
    JudgementStatus,
    LabelingRun,
    LLMCall,
    RunStatus,
    RunVoter,
)
from touchstone.errors import NotFound


def labeling_run_get(*, name_or_id: str) -> LabelingRun:
    runs = LabelingRun.objects.select_related("sample", "prompt_version__policy_version__policy",
                                              "prompt_version__template_version__template")
    run = runs.filter(name=name_or_id).first()
    if run is None and name_or_id.isdigit():
        run = runs.filter(pk=int(name_or_id)).first()
    if run is None:
        raise NotFound(f"no labeling run {name_or_id!r}")
    return run


@dataclass
class RunProgress:
    status: str
    status_detail: str
    expected: int
    done: int
    ok: int
    failed: int
    pending: int
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    cost: Decimal
    calls: int
    simulated: bool
    routing: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def percent(self) -> float:
        return 100.0 * self.done / self.expected if self.expected else 100.0

    def as_dict(self) -> dict[str, object]:
        return {**{k: v for k, v in self.__dict__.items()}, "cost": str(self.cost), "percent": round(self.percent, 1)}


def labeling_run_progress(*, run: LabelingRun) -> RunProgress:
    """Counts from the database (never from worker memory): four aggregate queries."""
    voters = run.voters.count()
    expected = run.sample.size * voters
    judged = run.judgements.aggregate(ok=Count("id", filter=Q(status=JudgementStatus.OK)),
                                      failed=Count("id", filter=Q(status=JudgementStatus.FAILED)),
                                      simulated=Count("id", filter=Q(simulated=True)))
    ledger = LLMCall.objects.filter(run=run).aggregate(
        calls=Count("id"), input=Sum("input_tokens"), cached=Sum("cached_tokens"), output=Sum("output_tokens"),
        cost=Sum("cost"))
    routing = dict(run.decisions.values_list("reason").annotate(n=Count("id")).values_list("reason", "n"))
    outcomes = dict(run.decisions.values_list("outcome").annotate(n=Count("id")).values_list("outcome", "n"))
    done = judged["ok"] + judged["failed"]
    return RunProgress(
        status=run.status, status_detail=run.status_detail, expected=expected, done=done, ok=judged["ok"],
        failed=judged["failed"], pending=max(expected - done, 0), input_tokens=ledger["input"] or 0,
        cached_tokens=ledger["cached"] or 0, output_tokens=ledger["output"] or 0, cost=ledger["cost"] or Decimal(0),
        calls=ledger["calls"], simulated=judged["simulated"] > 0 or any(
            v.endpoint.is_simulator for v in run.voters.select_related("endpoint")),
        routing=routing, outcomes=outcomes)


def labeling_run_failures(*, run: LabelingRun, limit: int = 200) -> list[Judgement]:
    return list(run.judgements.filter(status=JudgementStatus.FAILED).select_related("item", "voter")
                .order_by("item_id", "voter__position")[:limit])


class DecisionRow(NamedTuple):
    """One LLM decision on an item, with the run and prompt version that made it."""

    item_id: int
    run_id: int
    run_name: str
    prompt_version_sha256: str
    outcome: str
    reason: str
    label: str
    confidence: float | None
    votes: dict
    simulated: bool


def item_decisions_under_policy_version(*, policy_version_id: int,
                                        item_ids: Iterable[int] | None = None) -> Iterator[DecisionRow]:
    """The decisions of every run whose prompt was compiled from this policy version, oldest
    first per item (so the last row of an item is its newest decision); ``item_ids`` narrows
    them. ``simulated`` says that a voter of the run is the simulator."""
    decisions = ItemDecision.objects.filter(run__prompt_version__policy_version_id=policy_version_id)
    if item_ids is not None:
        decisions = decisions.filter(item_id__in=list(item_ids))
    runs = decisions.values("run_id").distinct()
    simulated = set(RunVoter.objects.filter(run_id__in=runs, endpoint__is_simulator=True)
                    .values_list("run_id", flat=True))
    for row in (decisions.order_by("item_id", "created_at", "pk")
                .values_list("item_id", "run_id", "run__name", "run__prompt_version__sha256", "outcome", "reason",
                             "label", "confidence", "votes").iterator(chunk_size=10_000)):
        yield DecisionRow(*row, simulated=row[1] in simulated)


def routed_to_review_item_ids_query(*, policy_version_id: int) -> QuerySet:
    """The ids of items that runs under this policy version routed to human review, as a lazy
    query (for ``item_id__in=``: a subquery, however many items)."""
    return ItemDecision.objects.filter(run__prompt_version__policy_version_id=policy_version_id,
                                       outcome=DecisionOutcome.HUMAN_REVIEW).values_list("item_id", flat=True)


def item_ids_routed_to_review(*, policy_version_id: int) -> list[int]:
    """Items that runs under this policy version routed to human review, in id order."""
    return list(routed_to_review_item_ids_query(policy_version_id=policy_version_id).order_by("item_id").distinct())


class VoterJudgement(NamedTuple):
    voter: str  # "RUN #POSITION MODEL"
    item_id: int
    label: str


def voter_judgements_under_policy_version(*, policy_version_id: int) -> Iterator[VoterJudgement]:
    """Every valid judgement of every voter of runs under this policy version."""
    rows = (Judgement.objects.filter(run__prompt_version__policy_version_id=policy_version_id,
                                     status=JudgementStatus.OK)
            .values_list("run__name", "voter__position", "voter__model", "item_id", "label")
            .iterator(chunk_size=10_000))
    for run, position, model, item_id, label in rows:
        yield VoterJudgement(f"{run} #{position} {model}", item_id, label)


@dataclass(frozen=True)
class RunSummary:
    """A run's line on the home page: judgements done of expected, ledger cost, items routed to
    human review."""

    run: LabelingRun
    expected: int
    done: int
    cost: Decimal
    routed: int

    @property
    def percent(self) -> float:
        return 100.0 * self.done / self.expected if self.expected else 100.0


def _count_of(queryset: QuerySet) -> Coalesce:
    """A correlated COUNT(*) of ``queryset`` (filtered on ``run=OuterRef("pk")``), 0 when empty."""
    return Coalesce(Subquery(queryset.order_by().values("run").annotate(n=Count("pk")).values("n")[:1]), 0)


def labeling_run_recent_list(*, limit: int = 10) -> list[RunSummary]:
    """Runs in progress (running or paused), then the newest other runs, ``limit`` in all; one
    query (correlated subqueries, so no join multiplies another's rows)."""
    this_run = OuterRef("pk")
    runs = (LabelingRun.objects.select_related("sample", "prompt_version__policy_version__policy")
            .annotate(voter_count=_count_of(RunVoter.objects.filter(run=this_run)),
                      done=_count_of(Judgement.objects.filter(run=this_run)),
                      routed=_count_of(ItemDecision.objects.filter(run=this_run,
                                                                   outcome=DecisionOutcome.HUMAN_REVIEW)),
                      spent=Coalesce(Subquery(LLMCall.objects.filter(run=this_run).order_by().values("run")
                                              .annotate(total=Sum("cost")).values("total")[:1]),
                                     Value(Decimal(0)), output_field=DecimalField()),
                      active=Case(When(status__in=(RunStatus.RUNNING, RunStatus.PAUSED), then=0), default=1))
            .order_by("active", "-created_at", "-pk")[:limit])
    return [RunSummary(run=run, expected=run.sample.size * run.voter_count, done=run.done, cost=run.spent,
                       routed=run.routed) for run in runs]
