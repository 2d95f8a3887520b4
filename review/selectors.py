"""Reads for human review: queue overviews, labeler and vendor quality, labelers by reference."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import NamedTuple

import orjson
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from review.models import (
    HiddenGoldItem,
    HumanLabel,
    HumanLabelRole,
    Labeler,
    ReviewQueue,
    ReviewQueuePurpose,
    ReviewTask,
    ReviewTaskStatus,
    Vendor,
)
from review.quality import ReviewLabel, rater_quality
from review.quality_series import DRIFT_RULE, Week, final_label, latest_gold_week, week_start, weekly_series
from touchstone.db import raw_rows
from touchstone.errors import LocatedError, NotFound


def review_queue_overview() -> list[dict]:
    """Per queue: task counts, its labelers' quality (see labeler_quality), ``drifting``: its
    labelers whose latest week with hidden gold answers is flagged as drift (see
    labeler_drift_flags) and, for adjudication queues, the items still waiting for an adjudicator."""

    queues = ReviewQueue.objects.select_related("vendor", "policy_version__policy", "adjudication_queue").annotate(
        new=Count("tasks", filter=Q(tasks__status__in=(ReviewTaskStatus.NEW, ReviewTaskStatus.IMPORTING))),
        open=Count("tasks", filter=Q(tasks__status=ReviewTaskStatus.OPEN, tasks__labels=0)),
        in_progress=Count("tasks", filter=Q(tasks__status=ReviewTaskStatus.OPEN, tasks__labels__gt=0)),
        complete=Count("tasks", filter=Q(tasks__status=ReviewTaskStatus.COMPLETE)),
        gold=Count("tasks", filter=Q(tasks__is_gold=True)))
    labels, gold, labelers = _review_labels(adjudication_too=True)
    queues = list(queues)
    by_queue: dict[int, list] = {}
    for label in labels:
        by_queue.setdefault(label.queue, []).append(label)
    # labels in review queues are the review labels (adjudication queues store adjudications)
    drifting = _drifting([label for queue in queues if queue.purpose == ReviewQueuePurpose.REVIEW
                          for label in by_queue.get(queue.pk, [])], gold)
    rows = []
    for queue in queues:
        measured = rater_quality(by_queue.get(queue.pk, []), gold)
        rows.append({"queue": queue,
                     "labelers": [{"labeler": labelers[rater], **values, "drift_week": drifting.get(rater)}
                                  for rater, values in sorted(measured.items(), key=lambda kv: str(labelers[kv[0]]))],
                     "drifting": [{"labeler": labelers[rater], "week": drifting[rater]}
                                  for rater in sorted(measured, key=lambda r: str(labelers[r])) if rater in drifting],
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
    by_vendor = [replace(row, rater=(labelers[row.rater].vendor.name, labelers[row.rater].vendor_id)) for row in rows]
    return [{"vendor": vendor, "vendor_id": vendor_id, **values}
            for (vendor, vendor_id), values in sorted(rater_quality(by_vendor, gold).items())]


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
    rule_ids: tuple[str, ...] = ()  # the policy rules the labeler said were violated


def human_labels_by_item(*, policy_version_id: int) -> Iterator[tuple[int, list[FreezeLabel]]]:
    """The labels eligible for a freeze: every human label under this policy version (valid or
    not: the freeze counts what it ignores), grouped by item in item order. Streamed with a raw
    cursor: at 100,000 items the ORM's per-row work costs more than the freeze's own."""
    rows = raw_rows("SELECT item_id, labeler_id, role, label, is_valid, labeled_at, queue_id, rule_ids "
                    f"FROM {HumanLabel._meta.db_table} "
                    "WHERE policy_version_id = %s ORDER BY item_id, labeler_id, role", [policy_version_id])
    current, group = None, []
    for row in rows:
        if row[0] != current and group:
            yield current, group
            group = []
        current = row[0]
        rules = row[7]
        if isinstance(rules, str):  # SQLite's JSON text; most labels name no rule, so skip decoding "[]"
            rules = orjson.loads(rules) if rules != "[]" else ()
        group.append(FreezeLabel(row[0], row[1], row[2], row[3], bool(row[4]), row[5], row[6],
                                 tuple(str(rule) for rule in rules or ())))
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


# Labelers over time (review.quality_series): weekly series per labeler and per vendor.

DEFAULT_WEEKS, MAX_WEEKS = 12, 104
RECENT_MISSES = 20


class QualityWindow(NamedTuple):
    first: date
    last: date
    weeks: int


def quality_window(*, weeks: int = DEFAULT_WEEKS, today: date | None = None) -> QualityWindow:
    """The last ``weeks`` ISO weeks (UTC, starting Monday) up to and including this week.
    Raises LocatedError naming ``weeks`` outside 1..MAX_WEEKS."""
    if isinstance(weeks, bool) or not isinstance(weeks, int) or not 1 <= weeks <= MAX_WEEKS:
        raise LocatedError(f"must be a whole number from 1 to {MAX_WEEKS}, not {weeks!r}", field="weeks")
    last = week_start(today or timezone.now().date())
    return QualityWindow(last - timedelta(weeks=weeks - 1), last, weeks)


def _series_inputs(scope: Q | None) -> tuple[list[tuple], dict, dict]:
    """The counted review labels of the labelers in ``scope`` (every labeler when None) and
    their peers' on the same items, as (labeler, vendor, ReviewLabel) rows; hidden gold by
    (policy version, item); final labels by (queue, (policy version, item))."""
    counted = HumanLabel.objects.filter(is_valid=True, role=HumanLabelRole.REVIEW).exclude(queue=None)
    adjudicated = HumanLabel.objects.filter(is_valid=True, role=HumanLabelRole.ADJUDICATION)
    gold_items = HiddenGoldItem.objects.all()
    if scope is not None:
        items = counted.filter(scope).values("item_id")
        counted, adjudicated = counted.filter(item_id__in=items), adjudicated.filter(item_id__in=items)
        gold_items = gold_items.filter(item_id__in=items)
    rows = [(labeler, vendor, ReviewLabel(rater=None, labeler=labeler, queue=queue, item=(version, item), label=label,
                                          seconds=None, day=when.date()))
            for labeler, vendor, queue, version, item, label, when in counted.values_list(
                "labeler_id", "labeler__vendor_id", "queue_id", "policy_version_id", "item_id", "label",
                "labeled_at").iterator(chunk_size=10_000)]
    adjudications = {(version, item): label for version, item, label in
                     adjudicated.order_by("labeled_at").values_list("policy_version_id", "item_id", "label")}
    by_unit: dict[tuple, list[str]] = {}
    for _, _, row in rows:
        by_unit.setdefault((row.queue, row.item), []).append(row.label)
    final = {unit: decided for unit, given in by_unit.items()
             if (decided := final_label(given, adjudications.get(unit[1]))) is not None}
    gold = {(version, item): label for version, item, label in
            gold_items.values_list("policy_version_id", "item_id", "label")}
    return rows, gold, final


def _series(rows: list[tuple], gold: dict, final: dict, rater_of, window: QualityWindow | None) -> dict:
    labels = [replace(row, rater=rater_of(labeler, vendor)) for labeler, vendor, row in rows]
    return weekly_series(labels, gold, final, first=window.first if window else None,
                         last=window.last if window else None)


def _empty_weeks(window: QualityWindow) -> list[Week]:
    """A window without labels still shows its weeks."""
    return [Week(start=window.first + timedelta(weeks=i)) for i in range(window.weeks)]


def labeler_quality_series(*, labeler: Labeler, window: QualityWindow) -> dict:
    """A labeler's weekly series in ``window`` (see review.quality_series), the latest week in
    which they answered hidden gold (within the window), and their most recent hidden-gold misses."""
    rows, gold, final = _series_inputs(Q(labeler=labeler))
    weeks = (_series(rows, gold, final, lambda who, _: who if who == labeler.pk else None, window).get(labeler.pk)
             or _empty_weeks(window))
    return {"labeler": labeler, "window": window, "weeks": weeks, "latest": latest_gold_week(weeks),
            "misses": hidden_gold_misses(labeler=labeler)}


def hidden_gold_misses(*, labeler: Labeler, limit: int = RECENT_MISSES) -> list[HumanLabel]:
    """The labeler's most recent counted labels on hidden gold that differ from the gold
    label, newest first; each carries ``gold_label``. One query."""
    gold = HiddenGoldItem.objects.filter(policy_version=OuterRef("policy_version"), item=OuterRef("item"))
    return list(HumanLabel.objects.filter(labeler=labeler, is_valid=True, role=HumanLabelRole.REVIEW)
                .exclude(queue=None).annotate(gold_label=Subquery(gold.values("label")[:1]))
                .filter(gold_label__isnull=False).exclude(label=F("gold_label"))
                .select_related("item", "queue").order_by("-labeled_at", "-pk")[:limit])


def vendor_quality_series(*, vendor: Vendor, window: QualityWindow) -> dict:
    """A vendor's weekly series in ``window`` (all its labelers' labels pooled; peers are other
    labelers) and, per labeler of the vendor who labeled, their series and latest gold week."""
    rows, gold, final = _series_inputs(Q(labeler__vendor=vendor))
    pooled = _series(rows, gold, final, lambda _, whose: whose if whose == vendor.pk else None, window)
    weeks = pooled.get(vendor.pk) or _empty_weeks(window)
    per_labeler = _series(rows, gold, final, lambda who, whose: who if whose == vendor.pk else None, window)
    labelers = Labeler.objects.filter(pk__in=per_labeler).select_related("vendor").order_by("external_id")
    return {"vendor": vendor, "window": window, "weeks": weeks, "latest": latest_gold_week(weeks),
            "labelers": [{"labeler": labeler, "weeks": per_labeler[labeler.pk],
                          "latest": latest_gold_week(per_labeler[labeler.pk])} for labeler in labelers]}


def labeler_drift_flags() -> dict[int, Week]:
    """Labelers whose latest week with hidden gold answers (over all their history) is flagged
    as drift: ``{labeler id: that week}``."""
    rows, gold, _ = _series_inputs(None)
    return _drifting([row for _, _, row in rows], gold, rater_of=lambda row: row.labeler)


def _drifting(labels: list[ReviewLabel], gold: dict, rater_of=lambda row: row.rater) -> dict:
    """Raters whose latest week with hidden gold answers is flagged (only accuracy decides it,
    so no final labels are needed)."""
    flagged = {}
    for rater, weeks in weekly_series([replace(label, rater=rater_of(label)) for label in labels], gold, {},
                                      accuracy_only=True).items():
        latest = latest_gold_week(weeks)
        if latest is not None and latest.drift:
            flagged[rater] = latest
    return flagged


MAX_ID = 2**31 - 1  # ids beyond what the database holds are simply not there


def vendor_get(*, vendor_id: int) -> Vendor:
    """Raises NotFound."""
    vendor = Vendor.objects.filter(pk=vendor_id).first() if 0 < vendor_id <= MAX_ID else None
    if vendor is None:
        raise NotFound(f"vendor {vendor_id}: no such vendor")
    return vendor


def vendor_by_name(*, name: str) -> Vendor:
    """Raises NotFound."""
    vendor = Vendor.objects.filter(name=name).first()
    if vendor is None:
        raise NotFound(f"vendor {name!r}: no such vendor")
    return vendor


def vendor_list() -> list[Vendor]:
    return list(Vendor.objects.order_by("name"))


def labeler_get(*, labeler_id: int) -> Labeler:
    """Raises NotFound."""
    labeler = (Labeler.objects.select_related("vendor").filter(pk=labeler_id).first()
               if 0 < labeler_id <= MAX_ID else None)
    if labeler is None:
        raise NotFound(f"labeler {labeler_id}: no such labeler")
    return labeler


def _labeler_ref(labeler: Labeler) -> dict:
    return {"id": labeler.pk, "vendor": labeler.vendor.name, "vendor_id": labeler.vendor_id,
            "external_id": labeler.external_id, "status": labeler.status}


def _window_doc(window: QualityWindow) -> dict:
    return {"first": window.first.isoformat(), "last": window.last.isoformat(), "weeks": window.weeks}


def _latest(latest: Week | None) -> dict:
    return {"latest_gold_week": latest.name if latest else None, "drift": bool(latest and latest.drift)}


def labeler_quality_document(data: dict) -> dict:
    """labeler_quality_series as JSON-ready data (the CLI's --json and the API)."""
    return {"labeler": _labeler_ref(data["labeler"]), "window": _window_doc(data["window"]),
            "drift_rule": DRIFT_RULE, **_latest(data["latest"]), "weeks": [week.as_dict() for week in data["weeks"]]}


def vendor_quality_document(data: dict) -> dict:
    """vendor_quality_series as JSON-ready data (the CLI's --json and the API)."""
    vendor = data["vendor"]
    return {"vendor": {"id": vendor.pk, "name": vendor.name}, "window": _window_doc(data["window"]),
            "drift_rule": DRIFT_RULE, **_latest(data["latest"]), "weeks": [week.as_dict() for week in data["weeks"]],
            "labelers": [{"labeler": _labeler_ref(row["labeler"]), **_latest(row["latest"])}
                         for row in data["labelers"]]}


def review_task_open_item_ids(*, policy_version_id: int, item_ids: Iterable[int]) -> set[int]:
    """Of ``item_ids``, those with a review or adjudication task (not hidden gold) under this
    policy version that is not complete yet: their final human label may still change."""
    return set(ReviewTask.objects.filter(queue__policy_version_id=policy_version_id, item_id__in=list(item_ids),
                                         is_gold=False).exclude(status=ReviewTaskStatus.COMPLETE)
               .values_list("item_id", flat=True).distinct())
