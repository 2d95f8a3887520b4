"""Reads for content, samples and runs."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal

from django.db.models import Count, Q, Sum

from labeling.models import (
    HiddenGoldItem,
    HumanLabel,
    HumanLabelRole,
    Judgement,
    JudgementStatus,
    Labeler,
    LabelingRun,
    LLMCall,
    ReviewQueue,
    ReviewTaskStatus,
)
from labeling.quality import ReviewLabel, rater_quality
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


def review_queue_overview() -> list[dict]:
    """Per queue: task counts, its labelers' quality (see labeler_quality) and, for
    adjudication queues, the items still waiting for an adjudicator."""

    queues = ReviewQueue.objects.select_related("vendor", "policy_version__policy", "adjudication_queue").annotate(
        new=Count("tasks", filter=Q(tasks__status__in=(ReviewTaskStatus.NEW, ReviewTaskStatus.IMPORTING))),
        open=Count("tasks", filter=Q(tasks__status=ReviewTaskStatus.OPEN, tasks__labels=0)),
        in_progress=Count("tasks", filter=Q(tasks__status=ReviewTaskStatus.OPEN, tasks__labels__gt=0)),
        complete=Count("tasks", filter=Q(tasks__status=ReviewTaskStatus.COMPLETE)),
        gold=Count("tasks", filter=Q(tasks__is_gold=True)))
    labels, gold, labelers = _review_labels(adjudication_too=True)
    by_queue: dict[int, list] = {}
    for label in labels:
        by_queue.setdefault(label.queue, []).append(label)
    rows = []
    for queue in queues:
        measured = rater_quality(by_queue.get(queue.pk, []), gold)
        rows.append({"queue": queue,
                     "labelers": [{"labeler": labelers[rater], **values}
                                  for rater, values in sorted(measured.items(), key=lambda kv: str(labelers[kv[0]]))],
                     "waiting_adjudication": queue.new + queue.open + queue.in_progress
                     if queue.purpose == "adjudication" else None})
    return rows


def _review_labels(queue_id: int | None = None, adjudication_too: bool = False) -> tuple[list, dict, dict]:
    """Valid labels made in queues, hidden gold by (policy version, item), labelers."""

    labels = HumanLabel.objects.filter(is_valid=True).exclude(queue=None)
    if not adjudication_too:
        labels = labels.filter(role=HumanLabelRole.REVIEW)
    if queue_id is not None:
        labels = labels.filter(queue_id=queue_id)
    rows = [ReviewLabel(rater=labeler, labeler=labeler, queue=queue, item=(version, item), label=label, seconds=seconds,
                        day=when.date())
            for labeler, queue, version, item, label, seconds, when in labels.values_list(
                "labeler_id", "queue_id", "policy_version_id", "item_id", "label", "seconds_spent", "labeled_at")
            .iterator(chunk_size=10_000)]
    gold = {(version, item): label for version, item, label in
            HiddenGoldItem.objects.values_list("policy_version_id", "item_id", "label").iterator(chunk_size=10_000)}
    labelers = Labeler.objects.select_related("vendor").in_bulk({row.rater for row in rows})
    return rows, gold, labelers


def labeler_quality(queue_id: int | None = None) -> list[dict]:
    """Per labeler who labeled in a queue: accuracy and κ on hidden gold, peer agreement,
    labels per active day and median seconds per label (see labeling.quality)."""

    rows, gold, labelers = _review_labels(queue_id)
    measured = rater_quality(rows, gold)
    return [{"labeler": labelers[rater], **values}
            for rater, values in sorted(measured.items(), key=lambda kv: str(labelers[kv[0]]))]


def vendor_quality(queue_id: int | None = None) -> list[dict]:
    """The same measures per vendor (peer agreement across all its labelers' pairs)."""


    rows, gold, labelers = _review_labels(queue_id)
    by_vendor = [replace(row, rater=labelers[row.rater].vendor.name) for row in rows]
    return [{"vendor": vendor, **values} for vendor, values in sorted(rater_quality(by_vendor, gold).items())]


def labeler_by_ref(ref: str) -> Labeler:
    """A labeler by ``VENDOR/ID`` or by an id unique across vendors."""
    vendor, _, external_id = ref.rpartition("/")
    found = Labeler.objects.select_related("vendor").filter(external_id=external_id)
    if vendor:
        found = found.filter(vendor__name=vendor)
    matches = list(found[:2])
    if len(matches) != 1:
        raise NotFound(f"labeler {ref!r}: " + ("no such labeler" if not matches
                                                else "several vendors have one; name it as VENDOR/ID"))
    return matches[0]
