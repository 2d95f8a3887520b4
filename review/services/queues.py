"""Review queues: a Label Studio project per queue, idempotent pushes of items, and the
reconcile that pulls every annotation changed since the last sync into HumanLabel rows.

Overlap (k labels per item from k different labelers): the project's ``maximum_annotations``
is k, which Community Edition's "next task" stream honours; Touchstone counts the valid labels
from distinct labelers itself and marks the task complete at k, and ignores labels past the
k-th, because the API accepts more annotations than the maximum.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.db import connection, transaction
from django.db.models import Count, Q
from django.db.models.constants import OnConflict
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from content.models import ContentImage, ContentItem
from policies.models import PolicyVersion
from review.labelstudio import (
    LabelStudioClient,
    LabelStudioError,
    LabelStudioUnavailable,
    ProjectMissing,
    TaskAnnotations,
    label_studio_client,
)
from review.lsconfig import (
    MAX_IMAGES,
    QueueConfigSpec,
    QueueLabel,
    QueueRule,
    annotation_result,
    instructions_html,
    label_config,
    read_annotation,
    task_data,
)
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
from review.services.quality import PAUSED_REASON, gold_items_to_mix, labelers_flag, open_slots_for_uncounted
from runs.routing import needs_adjudication
from runs.selectors import (
    item_decisions_under_policy_version,
    item_ids_routed_to_review,
    routed_to_review_item_ids_query,
)
from touchstone.audit import audit_event_record
from touchstone.errors import ApplicationError
from touchstone.retry import backoff_seconds

PUSH_BATCH = 500
RETRY_CAP_SECONDS = 30.0
SYNC_PAGE = 500
SYNC_OVERLAP = timedelta(seconds=5)  # re-read a little before the last sync: clocks and commits lag


logger = logging.getLogger(__name__)


class QueueError(ApplicationError):
    code = "queue_error"


def queue_config_spec(policy_version: PolicyVersion, image_slots: int = 0,
                      parts: list[str] | None = None) -> QueueConfigSpec:
    labels = [QueueLabel(label.key, label.name, label.definition)
              for label in policy_version.labels.order_by("position", "pk")]
    rules = [QueueRule(rule_id, text) for rule_id, text
             in policy_version.rules.order_by("position", "pk").values_list("rule_id", "text")]
    return QueueConfigSpec(policy=str(policy_version), labels=labels, rule_ids=rules,
                           parts=parts or list(settings.CONTENT_PARTS), images=image_slots,
                           blur_images=policy_version.sensitive_images)


def _spec(queue: ReviewQueue) -> QueueConfigSpec:
    return queue_config_spec(queue.policy_version, queue.image_slots, queue.parts)


def _create_project(queue: ReviewQueue, client: LabelStudioClient) -> int:
    return client.project_create(
        title=f"{queue.name} ({queue.vendor.name})",
        label_config=label_config(_spec(queue)),
        instructions=instructions_html(queue.policy_version.text), maximum_annotations=queue.overlap,
        show_predictions=queue.show_llm_suggestions)


_IMAGE_SALT = "touchstone.review-image"


def review_image_url(storage_name: str) -> str:
    """A URL the labeler's browser can load the image from (Label Studio does not proxy it).
    The token is timestamped: it is good for REVIEW_IMAGE_URL_TTL seconds, and pushes and
    syncs sign tasks' URLs again before then (review_queue_images_resign)."""
    token = signing.dumps(storage_name, salt=_IMAGE_SALT, compress=True)
    return f"{settings.TOUCHSTONE_PUBLIC_URL}{reverse('review-image', args=[token])}"


def review_image_name(token: str) -> str | None:
    """The storage name a review-image token was signed for; None when the token is forged,
    expired (older than REVIEW_IMAGE_URL_TTL) or signs anything but a name."""
    try:
        name = signing.loads(token, salt=_IMAGE_SALT, max_age=settings.REVIEW_IMAGE_URL_TTL)
    except signing.BadSignature:  # SignatureExpired included
        return None
    return name if isinstance(name, str) and name else None


def _image_url_is_fresh(url: str) -> bool:
    """Whether a review-image URL was signed less than half the TTL ago (and is ours)."""
    prefix, _, token = url.rpartition("/")
    if f"{prefix}/" != review_image_url("-").rpartition("/")[0] + "/":
        return False  # signed for another public URL
    try:
        signing.loads(token, salt=_IMAGE_SALT, max_age=settings.REVIEW_IMAGE_URL_TTL / 2)
    except signing.BadSignature:
        return False
    return True


def _max_images(policy_version: PolicyVersion) -> int:
    """Image slots for a new queue: as many as the items routed so far carry (at most 4)."""
    routed = routed_to_review_item_ids_query(policy_version_id=policy_version.pk)
    most = (ContentImage.objects.filter(item_id__in=routed)
            .exclude(file="").values("item_id").annotate(n=Count("pk")).order_by("-n").values_list("n", flat=True)
            .first())
    return min(most or 0, MAX_IMAGES)


def _parts_in_use(policy_version: PolicyVersion) -> list[str]:
    """Text parts for a new queue: those the items routed so far carry (every allowed part when
    none is routed yet), so labelers do not face a heading per empty part."""
    seen: set[str] = set()
    routed = routed_to_review_item_ids_query(policy_version_id=policy_version.pk)
    for parts in ContentItem.objects.filter(pk__in=routed).values_list("parts", flat=True)[:5000]:
        seen.update(name for name, text in (parts or {}).items() if text)
    return [part for part in settings.CONTENT_PARTS if part in seen]


def _attach_webhook(queue: ReviewQueue, client: LabelStudioClient) -> None:
    """Annotation events to our webhook, when Touchstone has a URL Label Studio can reach."""
    if settings.LABEL_STUDIO_WEBHOOK_URL and settings.LABEL_STUDIO_WEBHOOK_SECRET:
        client.webhook_create(project_id=queue.ls_project_id, url=settings.LABEL_STUDIO_WEBHOOK_URL,
                              secret_header=settings.LABEL_STUDIO_WEBHOOK_HEADER,
                              secret=settings.LABEL_STUDIO_WEBHOOK_SECRET)


def review_queue_create(*, name: str, policy_version: PolicyVersion, vendor_name: str, overlap: int = 2,
                        purpose: str = ReviewQueuePurpose.REVIEW, adjudication_queue: str | None = None,
                        disagreement_rule: str = "no_majority", gold_share: float = 0.0,
                        show_llm_suggestions: bool = False, image_slots: int | None = None,
                        parts: list[str] | None = None,
                        acting_user: AbstractBaseUser | None = None,
                        client: LabelStudioClient | None = None) -> ReviewQueue:
    """Create the queue and its Label Studio project (the policy text is its instructions).
    ``image_slots`` and ``parts`` None: what the items routed so far carry."""
    if ReviewQueue.objects.filter(name=name).exists():
        raise QueueError(f"a queue named {name!r} exists already")
    adjudication = None
    if adjudication_queue:
        adjudication = ReviewQueue.objects.filter(name=adjudication_queue,
                                                  purpose=ReviewQueuePurpose.ADJUDICATION).first()
        if adjudication is None:
            raise QueueError(f"--adjudication-queue: no adjudication queue named {adjudication_queue!r}")
        if adjudication.policy_version_id != policy_version.pk:
            raise QueueError(f"--adjudication-queue: {adjudication_queue} works {adjudication.policy_version}, "
                             f"not {policy_version}")
    if overlap < 1:
        raise QueueError("overlap must be at least 1")
    if not 0 <= gold_share < 1:
        raise QueueError("gold share must be at least 0 and below 1")
    if image_slots is not None and not 0 <= image_slots <= MAX_IMAGES:
        raise QueueError(f"image slots must be between 0 and {MAX_IMAGES}")
    client = client or label_studio_client()
    vendor, _ = Vendor.objects.get_or_create(name=vendor_name,
                                             defaults={"is_expert": purpose == ReviewQueuePurpose.ADJUDICATION})
    queue = ReviewQueue(name=name, policy_version=policy_version, vendor=vendor, overlap=overlap, purpose=purpose,
                        adjudication_queue=adjudication, disagreement_rule=disagreement_rule, gold_share=gold_share,
                        show_llm_suggestions=show_llm_suggestions, created_by=acting_user,
                        image_slots=_max_images(policy_version) if image_slots is None else image_slots,
                        parts=_parts_in_use(policy_version) if parts is None else parts)
    queue.ls_project_id = _create_project(queue, client)  # outside any transaction: a network call
    _attach_webhook(queue, client)
    with transaction.atomic():
        queue.save()
        audit_event_record(actor=acting_user, event_type="review_queue.created", obj=queue,
                           details={"ls_project_id": queue.ls_project_id})
    return queue


def review_queue_recreate_project(*, queue: ReviewQueue, acting_user: AbstractBaseUser | None = None,
                                  client: LabelStudioClient | None = None) -> ReviewQueue:
    """After the project was deleted by hand: a new project, and every unfinished task pushed
    again on the next push. Labels already synced stay."""
    client = client or label_studio_client()
    project = _create_project(queue, client)
    queue.ls_project_id = project
    _attach_webhook(queue, client)
    with transaction.atomic():
        ReviewQueue.objects.filter(pk=queue.pk).update(ls_project_id=project, last_synced_at=None, status_detail="")
        queue.tasks.exclude(status=ReviewTaskStatus.COMPLETE).update(status=ReviewTaskStatus.NEW, ls_task_id=None)
        audit_event_record(actor=acting_user, event_type="review_queue.project_recreated", obj=queue,
                           details={"ls_project_id": project})
    queue.refresh_from_db()
    return queue


def routed_items(queue: ReviewQueue) -> list[int]:
    """Items LLM runs under this queue's policy version routed to human review."""
    return item_ids_routed_to_review(policy_version_id=queue.policy_version_id)


@dataclass
class PushResult:
    added: int = 0
    pushed: int = 0
    recovered: int = 0
    retries: int = 0
    gold: int = 0  # hidden gold items mixed in
    resigned: int = 0  # tasks already in Label Studio whose image URLs were signed again


def _add_tasks(queue: ReviewQueue, wanted: list[int]) -> tuple[int, int]:
    """ReviewTask rows for the items not in the queue yet, with hidden gold mixed in at the
    queue's share, shuffled so gold sits anywhere among them. Runs inside a transaction."""
    known = dict(queue.tasks.values_list("item_id", "is_gold"))
    new_items = [item for item in dict.fromkeys(wanted) if item not in known]
    # All of the version's gold, intersected here: an IN of 10,000 ids cost more to compile.
    gold_known = set(HiddenGoldItem.objects.filter(policy_version=queue.policy_version)
                     .values_list("item_id", flat=True)).intersection(new_items)
    rows = [(item, item in gold_known) for item in new_items]
    real = sum(1 for is_gold in known.values() if not is_gold) + len(new_items) - len(gold_known)
    gold = sum(1 for is_gold in known.values() if is_gold) + len(gold_known)
    mixed = gold_items_to_mix(queue, real_tasks=real, gold_tasks=gold, taken=set(known) | set(new_items))
    rows += [(item, True) for item in mixed]
    random.Random(f"{queue.pk}:{len(known)}").shuffle(rows)
    _insert_tasks(queue, rows)
    return len(rows), len(mixed)


def _insert_tasks(queue: ReviewQueue, rows: list[tuple[int, bool]]) -> None:
    """New tasks (item, is gold) in the given order, skipping items the queue has already: plain
    INSERTs (the ORM's per-row work cost a 10,000-item push 0.7 s before its first import)."""
    ops = connection.ops
    columns = ("queue_id", "item_id", "status", "labels", "is_gold", "extra_slots", "created_at")
    sql = (f"{ops.insert_statement(on_conflict=OnConflict.IGNORE)} {ops.quote_name(ReviewTask._meta.db_table)} "
           f"({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
           f"{ops.on_conflict_suffix_sql([], OnConflict.IGNORE, [], [])}")
    now = ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.executemany(sql, [(queue.pk, item, ReviewTaskStatus.NEW.value, 0, is_gold, 0, now)
                                 for item, is_gold in rows])


def review_queue_push(*, queue: ReviewQueue, item_ids: list[int] | None = None,
                      client: LabelStudioClient | None = None, retry_for: float | None = None,
                      sleep: Callable[[float], None] = time.sleep,
                      acting_user: AbstractBaseUser | None = None) -> PushResult:
    """Make each item exactly one Label Studio task of this queue, in batches.

    Idempotent across retries and crashes: ReviewTask rows are the claim; a batch is marked
    ``importing`` before it is sent, and every (re)start first recovers the task ids of batches
    whose import went through but whose ids were not saved (no duplicate task). While Label
    Studio is unreachable the push waits with backoff, the reason visible in the queue's
    status, for up to ``retry_for`` seconds (LABEL_STUDIO_RETRY_SECONDS), then raises
    LabelStudioUnavailable: nothing is lost, push again.
    """
    client = client or label_studio_client()
    result = PushResult()
    wanted = routed_items(queue) if item_ids is None else item_ids
    with transaction.atomic():
        result.added, result.gold = _add_tasks(queue, wanted)
        audit_event_record(actor=acting_user, event_type="review_queue.push_requested", obj=queue,
                           details={"wanted": len(wanted), "added": result.added, "gold": result.gold})
    deadline = time.monotonic() + (settings.LABEL_STUDIO_RETRY_SECONDS if retry_for is None else retry_for)
    attempt = 0
    while True:
        try:
            result.recovered += _recover_importing(queue, client)
            _push_new_tasks(queue, client, result)
            result.resigned = review_queue_images_resign(queue=queue, client=client)
            break
        except LabelStudioUnavailable as exc:
            attempt += 1
            result.retries += 1
            wait = backoff_seconds(attempt, base=1.0, cap=RETRY_CAP_SECONDS)
            if time.monotonic() + wait > deadline:
                with transaction.atomic():
                    ReviewQueue.objects.filter(pk=queue.pk).update(
                        status_detail=f"push stopped after {attempt} attempts: {exc}"[:500])
                    audit_event_record(actor=acting_user, event_type="review_queue.push_stopped", obj=queue,
                                       details={"attempts": attempt, "reason": str(exc)[:500]})
                raise
            ReviewQueue.objects.filter(pk=queue.pk).update(
                status_detail=f"push waiting {wait:.0f} s to retry (attempt {attempt}): {exc}"[:500])
            logger.warning("queue %s: push retrying in %.1f s: %s", queue.name, wait, exc)
            sleep(wait)
    with transaction.atomic():
        ReviewQueue.objects.filter(pk=queue.pk).update(status_detail="")
        audit_event_record(actor=acting_user, event_type="review_queue.pushed", obj=queue,
                           details={"pushed": result.pushed, "recovered": result.recovered,
                                    "retries": result.retries, "resigned": result.resigned})
    return result


def _push_new_tasks(queue: ReviewQueue, client: LabelStudioClient, result: PushResult) -> None:
    """Batches go out one at a time, and Label Studio is kept busy: as soon as one import
    returns, the next (already read and marked) is sent, and only then are the returned ids
    saved and the batch after it prepared, while that import is in flight."""
    spec = _spec(queue)

    def prepare() -> tuple[list[int], list[dict]] | None:
        batch = list(queue.tasks.filter(status=ReviewTaskStatus.NEW).select_related("item")
                     .order_by("pk")[:PUSH_BATCH])
        if not batch:
            return None
        ReviewTask.objects.filter(pk__in=[t.pk for t in batch]).update(status=ReviewTaskStatus.IMPORTING)
        return [t.pk for t in batch], _task_payload(queue, spec, batch)

    def settle(sending: list[int], in_flight: Future, never_sent: list[int]) -> list[int]:
        try:
            return in_flight.result()
        except BaseException as exc:
            # Unsent tasks go back to new; a batch whose import failed does too when its
            # project is gone, otherwise its fate is unknown and the next push looks it up.
            back = never_sent + (sending if isinstance(exc, ProjectMissing) else [])
            ReviewTask.objects.filter(pk__in=back).update(status=ReviewTaskStatus.NEW)
            raise

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ls-import") as pool:
        upcoming = prepare()
        if upcoming is None:
            return
        sending, payload = upcoming
        in_flight = pool.submit(client.tasks_import, queue.ls_project_id, payload)
        try:
            upcoming = prepare()
        except BaseException:
            settle(sending, in_flight, [])
            raise
        while True:
            ids = settle(sending, in_flight, upcoming[0] if upcoming else [])
            done = sending
            if upcoming is not None:
                sending, payload = upcoming
                in_flight = pool.submit(client.tasks_import, queue.ls_project_id, payload)
            _save_task_ids(list(zip(done, ids, strict=True)))
            result.pushed += len(done)
            if upcoming is None:
                return
            try:
                upcoming = prepare()
            except BaseException:
                settle(sending, in_flight, [])
                raise


def _save_task_ids(pairs: list[tuple[int, int]]) -> None:
    """Our task → its Label Studio task, marked open: one statement per batch. (Django's
    bulk_update builds an expression per row and cost as much as the import itself.)"""
    table = connection.ops.quote_name(ReviewTask._meta.db_table)
    cases = " ".join(["WHEN %s THEN %s"] * len(pairs))
    marks = ", ".join(["%s"] * len(pairs))
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET status = %s, ls_task_id = CASE id {cases} END WHERE id IN ({marks})",
                       [ReviewTaskStatus.OPEN.value, *(v for pair in pairs for v in pair), *(pk for pk, _ in pairs)])


def _task_data(spec: QueueConfigSpec, batch: list[ReviewTask]) -> dict[int, dict]:
    """Each task's data (by our task id): the item, freshly signed image URLs, our task id.
    The tasks come with their items (select_related)."""
    images: dict[int, list[str]] = {}
    if spec.images:
        for item_id, name in (ContentImage.objects.filter(item_id__in=[task.item_id for task in batch])
                              .exclude(file="").order_by("item_id", "position").values_list("item_id", "file")):
            images.setdefault(item_id, []).append(review_image_url(name))
    return {task.pk: {**task_data(task.item.parts, spec, images.get(task.item_id, ()), target=task.item.target_part),
                      "touchstone_task": task.pk}
            for task in batch}


def _task_payload(queue: ReviewQueue, spec: QueueConfigSpec, batch: list[ReviewTask]) -> list[dict]:
    """What Label Studio gets per task: its data and (only when the queue shows suggestions)
    the LLM's label as a prediction. Hidden gold looks like any task."""
    data = _task_data(spec, batch)
    items = [task.item_id for task in batch]
    suggestions = llm_suggestions(queue.policy_version, items, spec) if queue.show_llm_suggestions else {}
    payload = []
    for task in batch:
        entry: dict = {"data": data[task.pk]}
        if task.item_id in suggestions:
            entry["predictions"] = [suggestions[task.item_id]]
        payload.append(entry)
    return payload


def review_queue_images_resign(*, queue: ReviewQueue, client: LabelStudioClient | None = None) -> int:
    """Sign again the image URLs of the queue's tasks in Label Studio that were signed more than
    half of REVIEW_IMAGE_URL_TTL ago (or for another public URL), so a labeler never meets an
    expired one: each such task's data is replaced with freshly built data. Pushes and syncs
    call it. Returns how many tasks were updated."""
    if not queue.image_slots or queue.ls_project_id is None:
        return 0
    client = client or label_studio_client()
    ours = dict(queue.tasks.exclude(ls_task_id=None).values_list("ls_task_id", "pk"))
    stale = [ours[task_id] for task_id, data in client.tasks_data(queue.ls_project_id)
             if task_id in ours and not all(_image_url_is_fresh(url) for key, url in data.items()
                                           if key.startswith("image_") and isinstance(url, str) and url)]
    spec = _spec(queue)
    updated = 0
    for start in range(0, len(stale), PUSH_BATCH):
        batch = list(ReviewTask.objects.filter(pk__in=stale[start:start + PUSH_BATCH]).select_related("item"))
        fresh = _task_data(spec, batch)
        for task in batch:  # one request per task: Community Edition has no bulk update of task data
            client.task_update_data(task.ls_task_id, fresh[task.pk])
            updated += 1
    if updated:
        with transaction.atomic():
            audit_event_record(actor=None, event_type="review_queue.images_resigned", obj=queue,
                               details={"tasks": updated, "ttl_seconds": settings.REVIEW_IMAGE_URL_TTL})
    return updated


def llm_suggestions(policy_version: PolicyVersion, item_ids: list[int], spec: QueueConfigSpec) -> dict[int, dict]:
    """The newest LLM decision per item as a Label Studio prediction. Its model_version names
    the run and says SIMULATOR when any voter of the run is the simulator."""
    newest = {row.item_id: row for row in item_decisions_under_policy_version(
        policy_version_id=policy_version.pk, item_ids=item_ids) if row.label}  # oldest first: the last wins
    return {item_id: {"model_version": f"LLM run {row.run_name}"
                                       f"{' (SIMULATOR, not a real model)' if row.simulated else ''}"[:200],
                      "score": row.confidence if row.confidence is not None else 0.0,
                      "result": annotation_result(row.label, target_part=spec.parts[0])}
            for item_id, row in newest.items()}


def _recover_importing(queue: ReviewQueue, client: LabelStudioClient) -> int:
    """Tasks marked importing by a push that died: find them in the project by our id, or send
    them again if the import never happened."""
    stuck = {t.pk: t for t in queue.tasks.filter(status=ReviewTaskStatus.IMPORTING)}
    if not stuck:
        return 0
    found = {}
    for task in client.tasks_with_annotations(queue.ls_project_id):
        data = task.data or {}
        if data.get("touchstone_task") in stuck:
            found[data["touchstone_task"]] = task.task_id
    with transaction.atomic():
        for pk, ls_id in found.items():
            ReviewTask.objects.filter(pk=pk).update(ls_task_id=ls_id, status=ReviewTaskStatus.OPEN)
        ReviewTask.objects.filter(pk__in=set(stuck) - set(found)).update(status=ReviewTaskStatus.NEW)
    return len(found)


@dataclass
class SyncResult:
    tasks: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0  # read again with nothing new (the overlap window, a replay)
    invalid: int = 0
    ignored: int = 0
    completed: int = 0
    escalated: int = 0
    resigned: int = 0  # tasks whose image URLs were signed again


def _labeler_for(queue: ReviewQueue, user_id: int) -> Labeler:
    labeler = Labeler.objects.filter(ls_user_id=user_id).first()
    if labeler is None:
        labeler, _ = Labeler.objects.get_or_create(vendor=queue.vendor, external_id=f"ls-user-{user_id}",
                                                   defaults={"ls_user_id": user_id})
    return labeler


def review_queue_sync(*, queue: ReviewQueue, client: LabelStudioClient | None = None) -> SyncResult:
    """Pull every annotation changed since the last sync (reconcile): a missed webhook never
    loses a label. Idempotent; the newest version of an annotation wins."""
    client = client or label_studio_client()
    started = timezone.now()
    since = queue.last_synced_at - SYNC_OVERLAP if queue.last_synced_at else None
    taxonomy = set(queue.policy_version.labels.values_list("key", flat=True))
    tasks = {t.ls_task_id: t for t in queue.tasks.exclude(ls_task_id=None)}
    result = SyncResult()
    page: list[tuple[ReviewTask, TaskAnnotations]] = []
    for changed in client.tasks_with_annotations(queue.ls_project_id, updated_after=since):
        task = tasks.get(changed.task_id)
        if task is None:
            continue  # not ours (a task someone added by hand)
        page.append((task, changed))
        if len(page) == SYNC_PAGE:
            _sync_page(queue, page, taxonomy, result)
            page = []
    if page:
        _sync_page(queue, page, taxonomy, result)
    # Tasks with labels that do not count get extra slots; tasks given slots earlier get them
    # back once those labels are fixed, or Label Studio would show a done task as unfinished.
    uncounted = queue.tasks.filter(
        Q(status=ReviewTaskStatus.OPEN, item_id__in=HumanLabel.objects.filter(queue=queue, is_valid=False)
          .values("item_id")) | Q(extra_slots__gt=0)).select_related("queue")
    open_slots_for_uncounted(uncounted, client)
    result.resigned = review_queue_images_resign(queue=queue, client=client)
    with transaction.atomic():
        ReviewQueue.objects.filter(pk=queue.pk).update(last_synced_at=started, status_detail="")
        # One event per sync, with its counts: one per label would drown the audit log.
        audit_event_record(actor=None, event_type="review_queue.synced", obj=queue,
                           details={k: v for k, v in result.__dict__.items() if k != "escalated"})
    result.escalated = review_queue_escalate(queue=queue, client=client)
    return result


def review_queue_escalate(*, queue: ReviewQueue, client: LabelStudioClient | None = None) -> int:
    """Push the complete items whose k labels disagree (the queue's rule) to its adjudication
    queue, once each. Returns how many were sent."""
    adjudication = queue.adjudication_queue
    if adjudication is None:
        return 0
    violating = frozenset(queue.policy_version.labels.filter(is_violation=True).values_list("key", flat=True))
    already = set(adjudication.tasks.values_list("item_id", flat=True))
    complete = queue.tasks.filter(status=ReviewTaskStatus.COMPLETE, is_gold=False).exclude(item_id__in=already)
    labels: dict[int, list[str]] = {}
    for item_id, label in (HumanLabel.objects.filter(queue=queue, is_valid=True, item_id__in=complete.values("item_id"))
                           .order_by("labeled_at").values_list("item_id", "label")):
        labels.setdefault(item_id, []).append(label)
    disputed = [item for item, given in labels.items()
                if needs_adjudication(given, violating, queue.disagreement_rule)]
    if disputed:
        with transaction.atomic():
            audit_event_record(actor=None, event_type="review_queue.escalated", obj=queue,
                               details={"adjudication_queue": adjudication.name, "items": len(disputed),
                                        "rule": queue.disagreement_rule})
        review_queue_push(queue=adjudication, item_ids=disputed, client=client)
    return len(disputed)


def _sync_page(queue: ReviewQueue, page: list[tuple[ReviewTask, TaskAnnotations]], taxonomy: set[str],
               result: SyncResult) -> None:
    """One transaction per page of tasks, with the page's labelers and labels read up front."""
    users = {_annotator(a) for _, changed in page for a in changed.annotations} - {None}
    labelers = {labeler.ls_user_id: labeler for labeler in Labeler.objects.filter(ls_user_id__in=users)}
    existing = {(label.item_id, label.labeler_id): label for label in HumanLabel.objects.filter(
        policy_version=queue.policy_version, role=_role(queue), item_id__in=[task.item_id for task, _ in page])}
    stored = {task.pk: (task.labels, task.status, task.completed_at) for task, _ in page}
    with transaction.atomic():
        for task, changed in page:
            result.tasks += 1
            for annotation in changed.annotations:
                outcome = annotation_store(queue=queue, task=task, annotation=annotation, taxonomy=taxonomy,
                                           labelers=labelers, existing=existing)
                setattr(result, outcome, getattr(result, outcome) + 1)
        result.completed += _recount(queue, [task for task, _ in page], stored)


def _annotator(annotation: dict) -> int | None:
    if annotation.get("was_cancelled") or not annotation.get("completed_by"):
        return None
    user = annotation["completed_by"]
    return user if isinstance(user, int) else user.get("id")


def _role(queue: ReviewQueue) -> str:
    return HumanLabelRole.ADJUDICATION if queue.purpose == ReviewQueuePurpose.ADJUDICATION else HumanLabelRole.REVIEW


def annotation_store(*, queue: ReviewQueue, task: ReviewTask, annotation: dict, taxonomy: set[str],
                     labelers: dict[int, Labeler] | None = None,
                     existing: dict[tuple[int, int], HumanLabel] | None = None) -> str:
    """Runs inside a transaction: one annotation → its HumanLabel (created, updated when it
    changed, unchanged when read again, or ignored). Returns which: created | updated |
    unchanged | invalid | ignored. ``labelers`` (by Label
    Studio user) and ``existing`` (labels by item and labeler) are caches a sync passes in."""
    user = _annotator(annotation)
    if user is None:
        return "ignored"
    labeler = (labelers or {}).get(user) or _labeler_for(queue, user)
    if labelers is not None:
        labelers[user] = labeler
    when = annotation.get("updated_at") or annotation.get("created_at")
    labeled_at = parse_datetime(when) if isinstance(when, str) else when or timezone.now()
    read = read_annotation(annotation.get("result") or [], taxonomy)
    if labeler.paused_at and labeled_at and labeled_at >= labeler.paused_at and not read.problem:
        read = replace(read, problem=PAUSED_REASON)
    role = _role(queue)
    if existing is not None:
        stored = existing.get((task.item_id, labeler.pk))
    else:
        stored = HumanLabel.objects.filter(policy_version=queue.policy_version, item_id=task.item_id,
                                           labeler=labeler, role=role).first()
    if stored is None and not read.problem and task.labels >= queue.overlap:
        return "ignored"  # past the k-th label: Community Edition accepts it, the queue does not
    values = {"label": (read.label or "")[:63], "is_valid": not read.problem, "invalid_reason": read.problem,
              "rule_ids": read.rule_ids, "rationale": read.rationale,
              "seconds_spent": annotation.get("lead_time"), "labeled_at": labeled_at, "queue": queue,
              "external_ref": str(annotation.get("id", "")), "source": "label_studio"}
    if stored is None:
        created = HumanLabel.objects.create(policy_version=queue.policy_version, item_id=task.item_id,
                                            labeler=labeler, role=role, **values)
        if existing is not None:
            existing[(task.item_id, labeler.pk)] = created
        if not read.problem:
            task.labels += 1  # annotations come oldest first: the (k+1)-th of this sync is refused too
        return "invalid" if read.problem else "created"
    if stored.labeled_at and labeled_at and labeled_at < stored.labeled_at:
        return "ignored"  # an older version arriving late
    if all(getattr(stored, name) == value for name, value in values.items()):
        return "unchanged"  # the same version read again (a replayed webhook, a sync's overlap)
    for name, value in values.items():
        setattr(stored, name, value)
    stored.save()
    return "invalid" if read.problem else "updated"


def _recount(queue: ReviewQueue, tasks: list[ReviewTask],
             stored: dict[int, tuple] | None = None) -> int:
    """Runs inside a transaction: each task's valid labels from distinct labelers, and whether
    it is complete. With ``stored`` (each task's (labels, status, completed_at) as read from the
    database) only the tasks that changed are written. Returns how many just became complete."""
    counts = dict(HumanLabel.objects.filter(queue=queue, item_id__in=[t.item_id for t in tasks], is_valid=True)
                  .values("item_id").annotate(n=Count("labeler", distinct=True)).values_list("item_id", "n"))
    now, completed = timezone.now(), 0
    for task in tasks:
        count = counts.get(task.item_id, 0)
        complete = count >= queue.overlap
        status = ReviewTaskStatus.COMPLETE if complete else ReviewTaskStatus.OPEN
        completed_at = task.completed_at or (now if complete else None)
        if complete and task.status != ReviewTaskStatus.COMPLETE:
            completed += 1
        if stored is None or stored.get(task.pk) != (count, status, completed_at):
            ReviewTask.objects.filter(pk=task.pk).update(labels=count, status=status, completed_at=completed_at)
        task.labels, task.status, task.completed_at = count, status, completed_at
    return completed


def review_queue_status(*, queue: ReviewQueue) -> dict[str, int]:
    counts = queue.tasks.aggregate(
        not_pushed=Count("pk", filter=Q(status__in=(ReviewTaskStatus.NEW, ReviewTaskStatus.IMPORTING))),
        pending=Count("pk", filter=Q(status=ReviewTaskStatus.OPEN, labels=0)),
        in_progress=Count("pk", filter=Q(status=ReviewTaskStatus.OPEN, labels__gt=0)),
        complete=Count("pk", filter=Q(status=ReviewTaskStatus.COMPLETE)))
    counts["labels"] = HumanLabel.objects.filter(queue=queue).count()
    counts["invalid_labels"] = HumanLabel.objects.filter(queue=queue, is_valid=False).count()
    return counts


@dataclass
class WebhookOutcome:
    stored: str  # created | updated | unchanged | invalid | ignored | deleted | unknown
    queue: str = ""


def review_queue_webhook(*, payload: dict) -> WebhookOutcome:
    """An annotation event from Label Studio. Idempotent and safe out of order (the newest
    version of an annotation wins); events for tasks Touchstone does not know are ignored.
    The reconcile covers anything a webhook misses."""
    action = payload.get("action", "")
    project_id = (payload.get("project") or {}).get("id")
    queue = ReviewQueue.objects.select_related("policy_version", "vendor").filter(ls_project_id=project_id).first()
    if queue is None:
        return WebhookOutcome("unknown")
    if action == "ANNOTATIONS_DELETED":
        refs = [str(a.get("id")) for a in payload.get("annotations") or []]
        with transaction.atomic():
            items = list(HumanLabel.objects.filter(queue=queue, external_ref__in=refs)
                         .values_list("item_id", flat=True))
            deleted, _ = HumanLabel.objects.filter(queue=queue, external_ref__in=refs).delete()
            _recount(queue, list(queue.tasks.filter(item_id__in=items)))
            audit_event_record(actor=None, event_type="review_queue.webhook_labels_deleted", obj=queue,
                               details={"annotations": refs, "labels_deleted": deleted})
        return WebhookOutcome("deleted", queue.name)
    annotation = payload.get("annotation") or {}
    task_id = (payload.get("task") or {}).get("id") or annotation.get("task")
    task = queue.tasks.filter(ls_task_id=task_id).first()
    if task is None or not annotation:
        return WebhookOutcome("unknown", queue.name)
    taxonomy = set(queue.policy_version.labels.values_list("key", flat=True))
    with transaction.atomic():
        stored = annotation_store(queue=queue, task=task, annotation=annotation, taxonomy=taxonomy)
        _recount(queue, [task])
        if stored in ("created", "updated", "invalid"):
            audit_event_record(actor=None, event_type=f"review_queue.webhook_label_{stored}", obj=task,
                               details={"queue": queue.name, "item": task.item_id,
                                        "annotation": annotation.get("id"), "action": action})
    return WebhookOutcome(stored, queue.name)


def review_queues_reconcile() -> dict[str, str]:
    """Sync every queue (Celery beat); a queue whose Label Studio is down records why."""
    outcomes = {}
    for queue in ReviewQueue.objects.exclude(ls_project_id=None).select_related("policy_version", "vendor"):
        try:
            result = review_queue_sync(queue=queue)
        except LabelStudioError as exc:
            ReviewQueue.objects.filter(pk=queue.pk).update(status_detail=str(exc)[:500])
            outcomes[queue.name] = f"failed: {exc}"
        else:
            outcomes[queue.name] = f"{result.created} new, {result.updated} updated, {result.invalid} invalid"
    flagged = labelers_flag()
    if flagged:
        outcomes["flagged labelers"] = ", ".join(str(labeler) for labeler in flagged)
    return outcomes
