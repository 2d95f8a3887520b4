"""Reads for human review: queue overviews, labeler and vendor quality, labelers by reference."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import NamedTuple

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from review.models import (
    HiddenGoldItem,
    HumanLabel,
    HumanLabelRole,
    Labeler,
    ReviewQueue,
    ReviewTask,
    ReviewTaskStatus,
)
from review.quality import ReviewLabel, rater_quality
from touchstone.db import raw_rows
from touchstone.errors import NotFound


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
    labels per active day and median seconds per label (see review.quality)."""

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


class FreezeLabel(NamedTuple):
    """A human label as a freeze weighs it."""

    item_id: int
    labeler_id: int
    role: str
    label: str
    is_valid: bool
    labeled_at: str | datetime
    queue_id: int | None


def human_labels_by_item(*, policy_version_id: int) -> Iterator[tuple[int, list[FreezeLabel]]]:
    """The labels eligible for a freeze: every human label under this policy version (valid or
    not: the freeze counts what it ignores), grouped by item in item order. Streamed with a raw
    cursor: at 100,000 items the ORM's per-row work costs more than the freeze's own."""
    rows = raw_rows("SELECT item_id, labeler_id, role, label, is_valid, labeled_at, queue_id "
                    f"FROM {HumanLabel._meta.db_table} "
                    "WHERE policy_version_id = %s ORDER BY item_id, labeler_id, role", [policy_version_id])
    current, group = None, []
    for row in rows:
        if row[0] != current and group:
            yield current, group
            group = []
        current = row[0]
        group.append(FreezeLabel(row[0], row[1], row[2], row[3], bool(row[4]), row[5], row[6]))
    if group:
        yield current, group


class LabelerName(NamedTuple):
    vendor: str
    external_id: str


def labeler_names() -> dict[int, LabelerName]:
    """Vendor name and the vendor's id of every labeler."""
    return {pk: LabelerName(vendor, external_id)
            for pk, vendor, external_id in Labeler.objects.values_list("pk", "vendor__name", "external_id")}


def review_queue_names() -> dict[int, str]:
    return dict(ReviewQueue.objects.values_list("pk", "name"))


def review_queue_attention_list() -> list[ReviewQueue]:
    """Queues with tasks waiting for labels or with flagged labelers, by name, for the home
    page. Each carries ``waiting`` (tasks not yet complete: not pushed, being imported or open),
    ``complete`` and ``flagged_labelers`` (flagged labelers who labeled in it). One query."""
    this_queue = OuterRef("pk")

    def count_of(queryset: QuerySet, column: str) -> Coalesce:
        return Coalesce(Subquery(queryset.order_by().values("queue").annotate(n=Count(column, distinct=True))
                                 .values("n")[:1]), 0)

    tasks = ReviewTask.objects.filter(queue=this_queue)
    queues = (ReviewQueue.objects.select_related("vendor", "policy_version__policy").order_by("name")
              .annotate(waiting=count_of(tasks.exclude(status=ReviewTaskStatus.COMPLETE), "pk"),
                        complete=count_of(tasks.filter(status=ReviewTaskStatus.COMPLETE), "pk"),
                        flagged_labelers=count_of(HumanLabel.objects.filter(queue=this_queue,
                                                                            labeler__flagged_at__isnull=False),
                                                  "labeler")))
    return [queue for queue in queues if queue.waiting or queue.flagged_labelers]
