"""Hidden gold and labeler quality: gold items mixed into vendor queues, labelers flagged when
their accuracy on gold falls below the bar, and paused.

Pausing on Community Edition (which cannot assign tasks or lock a user out of a project):
from the pause on, the labeler's labels are stored but not counted (invalid, with the reason);
their labels on tasks that were not yet complete stop counting too, and each such task gets one
more slot in Label Studio (its ``overlap``) so it is served to another labeler. Completed tasks
keep their labels.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from content.models import ContentItem
from policies.models import PolicyVersion
from review.labelstudio import LabelStudioClient, label_studio_client
from review.models import (
    HiddenGoldItem,
    HumanLabel,
    HumanLabelRole,
    Labeler,
    ReviewQueue,
    ReviewQueuePurpose,
    ReviewTask,
    ReviewTaskStatus,
)
from review.quality import QualityBar
from review.selectors import labeler_quality
from touchstone.audit import audit_event_record
from touchstone.errors import ApplicationError

PAUSED_REASON = "not counted: the labeler was paused"


class QualityError(ApplicationError):
    code = "quality_error"


def hidden_gold_add(*, policy_version: PolicyVersion, labels: Iterable[tuple[int, str]], origin_detail: str,
                    acting_user: AbstractBaseUser | None = None) -> int:
    """Items with a label known from elsewhere (a frozen golden set: ``origin_detail`` names
    it) become hidden gold of this policy version; items that are gold already keep their
    label. Returns how many were added."""
    known = set(HiddenGoldItem.objects.filter(policy_version=policy_version).values_list("item_id", flat=True))
    rows = [HiddenGoldItem(policy_version=policy_version, item_id=item, label=label,
                           origin=HiddenGoldItem.Origin.GOLDEN_SET, origin_detail=origin_detail,
                           created_by=acting_user)
            for item, label in labels if item not in known]
    with transaction.atomic():
        HiddenGoldItem.objects.bulk_create(rows, batch_size=1000)
        audit_event_record(actor=acting_user, event_type="hidden_gold.added", obj=policy_version,
                           details={"added": len(rows), "from": origin_detail})
    return len(rows)


def hidden_gold_mark(*, policy_version: PolicyVersion, item: ContentItem, label: str,
                     acting_user: AbstractBaseUser | None = None) -> HiddenGoldItem:
    """An admin marks an item's known label."""
    if not policy_version.labels.filter(key=label).exists():
        raise QualityError(f"label: {label!r} is not in the taxonomy of {policy_version}")
    with transaction.atomic():
        gold, _ = HiddenGoldItem.objects.update_or_create(
            policy_version=policy_version, item=item,
            defaults={"label": label, "origin": HiddenGoldItem.Origin.ADMIN, "created_by": acting_user})
        audit_event_record(actor=acting_user, event_type="hidden_gold.marked", obj=gold, details={"label": label})
    return gold


def gold_items_to_mix(queue: ReviewQueue, *, real_tasks: int, gold_tasks: int, taken: set[int]) -> list[int]:
    """Hidden gold items to add so that gold makes up ``queue.gold_share`` of the queue's tasks
    (vendor review queues only), drawn reproducibly from the items not in the queue yet."""
    share = queue.gold_share
    if queue.purpose != ReviewQueuePurpose.REVIEW or share <= 0 or real_tasks == 0:
        return []
    wanted = real_tasks if share >= 1 else round(real_tasks * share / (1 - share))
    missing = wanted - gold_tasks
    if missing <= 0:
        return []
    candidates = [item for item in HiddenGoldItem.objects.filter(policy_version=queue.policy_version)
                  .order_by("item_id").values_list("item_id", flat=True) if item not in taken]
    return random.Random(f"{queue.pk}:{gold_tasks}").sample(candidates, min(missing, len(candidates)))


def quality_bar() -> QualityBar:
    return QualityBar(settings.LABELER_MIN_GOLD_ACCURACY, settings.LABELER_MIN_GOLD_ITEMS)


def labelers_flag(*, client: LabelStudioClient | None = None) -> list[Labeler]:
    """Flag the active labelers below the bar on hidden gold (and pause them when
    LABELER_AUTO_PAUSE). Returns the newly flagged."""
    bar = quality_bar()
    flagged = []
    for row in labeler_quality():
        labeler = row["labeler"]
        verdict = bar.verdict(row["gold_items"], row["accuracy"])
        if not verdict or labeler.flagged_at or labeler.status != Labeler.Status.ACTIVE:
            continue
        with transaction.atomic():
            Labeler.objects.filter(pk=labeler.pk).update(flagged_at=timezone.now(), flag_reason=verdict)
            audit_event_record(actor=None, event_type="labeler.flagged", obj=labeler, details={"reason": verdict})
        labeler.refresh_from_db()
        flagged.append(labeler)
        if settings.LABELER_AUTO_PAUSE:
            labeler_pause(labeler=labeler, reason=verdict, client=client)
    return flagged


def labeler_pause(*, labeler: Labeler, reason: str = "", acting_user: AbstractBaseUser | None = None,
                  client: LabelStudioClient | None = None) -> list[ReviewTask]:
    """Pause a labeler: no further label of theirs counts, and their unfinished tasks are served
    to others. Returns the tasks re-served."""
    if labeler.status == Labeler.Status.PAUSED:
        raise QualityError(f"{labeler} is paused already")
    with transaction.atomic():
        labeler.status, labeler.paused_at = Labeler.Status.PAUSED, timezone.now()
        labeler.save(update_fields=["status", "paused_at"])
        counted = set(HumanLabel.objects.filter(labeler=labeler, is_valid=True, role=HumanLabelRole.REVIEW)
                      .exclude(queue=None).values_list("queue_id", "item_id"))
        unfinished = [task for task in ReviewTask.objects.filter(
            status=ReviewTaskStatus.OPEN, queue_id__in={q for q, _ in counted},
            item_id__in={i for _, i in counted}).select_related("queue") if (task.queue_id, task.item_id) in counted]
        for task in unfinished:
            HumanLabel.objects.filter(labeler=labeler, queue=task.queue, item_id=task.item_id).update(
                is_valid=False, invalid_reason=PAUSED_REASON)
        # Each was one counted label of one labeler on a task not yet complete.
        ReviewTask.objects.filter(pk__in=[task.pk for task in unfinished], labels__gt=0).update(labels=F("labels") - 1)
        audit_event_record(actor=acting_user, event_type="labeler.paused", obj=labeler,
                           details={"reason": reason, "tasks_reserved": len(unfinished)})
    if unfinished:
        open_slots_for_uncounted(unfinished, client or label_studio_client())
    return unfinished


def labeler_resume(*, labeler: Labeler, acting_user: AbstractBaseUser | None = None) -> None:
    """Labels count again from now on; the labels made while paused stay uncounted."""
    if labeler.status != Labeler.Status.PAUSED:
        raise QualityError(f"{labeler} is not paused")
    with transaction.atomic():
        Labeler.objects.filter(pk=labeler.pk).update(status=Labeler.Status.ACTIVE, paused_at=None, flagged_at=None,
                                                     flag_reason="")
        audit_event_record(actor=acting_user, event_type="labeler.resumed", obj=labeler)
    labeler.refresh_from_db()


def open_slots_for_uncounted(tasks: Iterable[ReviewTask], client: LabelStudioClient) -> int:
    """Label Studio counts every annotation towards a task's overlap, Touchstone only the valid
    ones: give each task one slot per annotation that does not count, so Community Edition
    keeps serving it until it has k labels that do. Returns how many tasks changed."""
    changed = 0
    for task in tasks:
        uncounted = HumanLabel.objects.filter(queue=task.queue, item_id=task.item_id, is_valid=False).count()
        if task.ls_task_id is None or uncounted == task.extra_slots:
            continue
        client.task_set_overlap(task.ls_task_id, overlap=task.queue.overlap + uncounted)
        ReviewTask.objects.filter(pk=task.pk).update(extra_slots=uncounted)
        task.extra_slots = uncounted
        changed += 1
    return changed
