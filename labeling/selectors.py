"""Reads for content, samples and runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Q, Sum

from labeling.models import Judgement, JudgementStatus, LabelingRun, LLMCall
from policies.models import PolicyVersion
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


def policy_version_for_labels(ref: str) -> PolicyVersion:
    """``SLUG@N``, or the published version of ``SLUG``. Raises NotFound."""
    from policies.selectors import policy_version_get_by_ref, policy_version_published

    if "@" in ref:
        return policy_version_get_by_ref(ref)
    version = policy_version_get_by_ref(ref)
    published = policy_version_published(policy=version.policy)
    if published is None:
        raise NotFound(f"Policy {ref!r} has no published version; name one as {ref}@N.")
    return published
