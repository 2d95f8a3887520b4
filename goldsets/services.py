"""Golden-set writes: request a freeze, build (freeze) a version, all or nothing."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

import orjson
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from content.selectors import ItemKey, content_item_keys, content_item_snapshots
from goldsets.freeze import Digest, FreezeRule, HeadsDigest, canonical_line, decide_gold, item_order_key, pseudonym
from goldsets.models import DecidedBy, GoldenItem, GoldenSet, GoldenSetVersion, GoldenSetVersionStatus
from policies.models import PolicyVersion
from review.models import HumanLabelRole
from review.selectors import LabelerName, human_labels_by_item, labeler_names, review_queue_names
from review.services.quality import hidden_gold_add
from runs.models import DecisionOutcome
from runs.selectors import item_decisions_under_policy_version, voter_judgements_under_policy_version
from stats import accuracy_against_gold, agreement_summary
from touchstone.audit import audit_event_record
from touchstone.db import iso_utc
from touchstone.errors import (
    ApplicationError,
    BrokerUnavailable,
    InvalidStateTransition,
    LocatedError,
    PermissionDenied,
)
from touchstone.tasks import enqueue_on_commit

logger = logging.getLogger(__name__)

ID_CHUNK = 2000
BOOTSTRAP_RESAMPLES = 1000
# A freeze still building after this long has lost its process (a killed CLI, a lost worker):
# longer than any freeze takes and than the freeze task's time limit.
FREEZE_STALE_AFTER_SECONDS = 3600


class NothingToFreeze(ApplicationError):
    code = "nothing_to_freeze"
    status = 422


@transaction.atomic(durable=True)
def goldset_version_freeze_request(*, name: str, policy_version: PolicyVersion, rule: FreezeRule,
                                   changelog: str = "", description: str = "", on_worker: bool = False,
                                   acting_user: AbstractBaseUser | None = None) -> GoldenSetVersion:
    """Create the golden set ``name`` if needed and a building version to freeze; with
    ``on_worker`` the freeze is sent to the ``freeze`` queue when the transaction commits
    (otherwise the caller builds it with ``goldset_version_build``).

    Raises PermissionDenied when ``acting_user`` may not freeze golden sets, LocatedError when
    the set exists for another policy, and (after the commit) BrokerUnavailable when the task
    cannot be sent: the request is then already marked failed with the reason.
    """
    if acting_user is not None and not acting_user.has_perm("goldsets.freeze_goldenset"):
        raise PermissionDenied(f"{acting_user.get_username()} may not freeze golden sets "
                               "(needs the goldsets.freeze_goldenset permission)")
    golden_set, created = GoldenSet.objects.get_or_create(
        name=name, defaults={"policy": policy_version.policy, "description": description, "created_by": acting_user})
    if golden_set.policy_id != policy_version.policy_id:
        raise LocatedError(f"golden set {name!r} belongs to policy {golden_set.policy.slug!r}, "
                           f"not {policy_version.policy.slug!r}", field="--policy")
    if created and acting_user is not None:
        golden_set.owners.add(acting_user)
        audit_event_record(actor=acting_user, event_type="goldset.created", obj=golden_set)
    _fail_stale_freezes(golden_set=golden_set, stale_after_seconds=FREEZE_STALE_AFTER_SECONDS,
                        noticed_by="a new freeze request")
    version = GoldenSetVersion.objects.create(golden_set=golden_set, policy_version=policy_version,
                                              freeze_rule=rule.as_dict(), changelog=changelog,
                                              created_by=acting_user)
    audit_event_record(actor=acting_user, event_type="goldset.freeze_requested", obj=version,
                       details={"rule": rule.as_dict(), "policy_version": str(policy_version),
                                "on_worker": on_worker})
    if on_worker:
        enqueue_on_commit("goldsets.tasks.freeze_golden_set_version", version.pk,
                          on_unavailable=partial(_freeze_request_failed, version=version, actor=acting_user))
    return version


def _freeze_request_failed(reason: str, *, version: GoldenSetVersion, actor: AbstractBaseUser | None) -> None:
    """Runs after the request's transaction committed, in its own: its task could not be sent,
    so the request fails now with the reason instead of building until the watchdog. Raises
    BrokerUnavailable naming the request."""
    with transaction.atomic():
        updated = GoldenSetVersion.objects.filter(pk=version.pk, status=GoldenSetVersionStatus.BUILDING).update(
            status=GoldenSetVersionStatus.FAILED, failure_reason=reason[:2000])
        if updated:
            version.refresh_from_db()
            audit_event_record(actor=actor, event_type="goldset.freeze_failed", obj=version,
                               details={"reason": reason})
    raise BrokerUnavailable(f"freeze #{version.pk} of golden set {version.golden_set.name!r} failed: {reason}; "
                            "request it again when the broker is back",
                            extra={"freeze_id": version.pk, "status": version.status})


@dataclass
class _Included:
    gold_label: str
    decided_by: str
    labels: list[tuple[int, str, str, str, tuple[str, ...]]]  # labeler pk, role, label, labeled_at ISO, rule ids
    queues: tuple[int, ...] = ()  # review queues the labels came through


def _llm_decisions(policy_version: PolicyVersion) -> dict[int, dict]:
    """The newest LLM decision per item under this policy version's prompts."""
    return {row.item_id: {"run_id": row.run_id, "run": row.run_name, "prompt_version": row.prompt_version_sha256,
                          "outcome": row.outcome, "reason": row.reason, "label": row.label,
                          "confidence": row.confidence, "votes": row.votes}
            for row in item_decisions_under_policy_version(policy_version_id=policy_version.pk)}


def _select(policy_version: PolicyVersion, rule: FreezeRule, taxonomy: set[str],
            llm: dict[int, dict]) -> tuple[dict[int, _Included], Counter]:
    included: dict[int, _Included] = {}
    excluded: Counter = Counter()
    labelled: set[int] = set()
    for item_id, rows in human_labels_by_item(policy_version_id=policy_version.pk):
        labelled.add(item_id)
        valid = [r for r in rows if r.is_valid and r.label in taxonomy]
        excluded["invalid_labels_ignored"] += len(rows) - len(valid)
        review = [r.label for r in valid if r.role == HumanLabelRole.REVIEW]
        adjudicated = next((r.label for r in valid if r.role == HumanLabelRole.ADJUDICATION), None)
        decision = decide_gold(review, adjudicated, rule)
        if decision.gold_label is None:
            excluded[decision.excluded_because] += 1
            continue
        included[item_id] = _Included(decision.gold_label, decision.decided_by,
                                      [(r.labeler_id, r.role, r.label, iso_utc(r.labeled_at), r.rule_ids)
                                       for r in valid],
                                      tuple(sorted({r.queue_id for r in valid if r.queue_id is not None})))
    for item_id, decision in llm.items():
        if item_id in labelled or decision["outcome"] != DecisionOutcome.AUTO_ACCEPTED:
            continue
        if rule.include_llm_only and decision["label"] in taxonomy:
            included[item_id] = _Included(decision["label"], DecidedBy.LLM_AUTO_ACCEPTED, [])
        else:
            excluded["llm_only"] += 1
    if not excluded["invalid_labels_ignored"]:
        del excluded["invalid_labels_ignored"]
    return included, excluded


def _item_keys(item_ids: list[int]) -> list[ItemKey]:
    """The items' keys in digest order."""
    return sorted(content_item_keys(item_ids=item_ids), key=lambda key: item_order_key(key.source, key.external_id))


def _statistics(*, version: GoldenSetVersion, included: dict[int, _Included], taxonomy: list[str],
                names: dict[int, LabelerName]) -> dict:
    key = version.golden_set.pseudonym_key
    aliases = {pk: pseudonym(key, vendor, labeler) for pk, (vendor, labeler) in names.items()}
    alias = aliases.__getitem__

    units = [{alias(pk): label for pk, role, label, *_ in entry.labels if role == HumanLabelRole.REVIEW}
             for entry in included.values() if entry.labels]
    stats = agreement_summary(units, taxonomy, ordered=version.policy_version.ordered_labels,
                              n_resamples=BOOTSTRAP_RESAMPLES, seed=version.pk or 0)
    gold = {item_id: entry.gold_label for item_id, entry in included.items()}
    reviews = [(pk, item_id, label) for item_id, entry in included.items()
               for pk, role, label, *_ in entry.labels if role == HumanLabelRole.REVIEW]
    by_labeler = accuracy_against_gold(((alias(pk), i, label) for pk, i, label in reviews), gold, taxonomy)
    by_vendor = accuracy_against_gold(((names[pk].vendor, i, label) for pk, i, label in reviews), gold, taxonomy)
    vendors = {alias(pk): names[pk].vendor for pk, _, _ in reviews}
    stats["labelers"] = sorted(
        ({"labeler": name, "vendor": vendors[name], **row, "kappa": row["kappa"].as_dict()}
         for name, row in by_labeler.items()), key=lambda row: row["labeler"])
    stats["vendors"] = sorted(({"vendor": name, **row, "kappa": row["kappa"].as_dict()}
                               for name, row in by_vendor.items()), key=lambda row: row["vendor"])
    stats["llm_voters"] = _llm_voter_accuracy(version.policy_version, gold, taxonomy)
    return stats


def _llm_voter_accuracy(policy_version: PolicyVersion, gold: dict[int, str], taxonomy: list[str]) -> list[dict]:
    scores = accuracy_against_gold(voter_judgements_under_policy_version(policy_version_id=policy_version.pk),
                                   gold, taxonomy)
    return sorted(({"voter": name, **row, "kappa": row["kappa"].as_dict()} for name, row in scores.items()),
                  key=lambda row: row["voter"])


def goldset_version_build(*, version_id: int, on_progress: Callable[[int, int], None] | None = None
                          ) -> GoldenSetVersion:
    """Freeze a building version: select items, decide gold, snapshot them, compute stats and
    the digest, all in one transaction. Idempotent: a frozen version is returned as is.

    On failure the version is marked failed with the reason and the error re-raised; no
    frozen version and no golden item is left behind.
    """
    version = GoldenSetVersion.objects.select_related("golden_set", "policy_version").get(pk=version_id)
    if version.status in (GoldenSetVersionStatus.FROZEN, GoldenSetVersionStatus.UNCHANGED):
        return version
    if version.status == GoldenSetVersionStatus.FAILED:
        raise InvalidStateTransition(f"{version} failed ({version.failure_reason}); request a new freeze.")
    try:
        return _build(version_id=version_id, on_progress=on_progress)
    except Exception as exc:
        reason = str(exc) if isinstance(exc, ApplicationError) else f"{type(exc).__name__}: {exc}"
        with transaction.atomic():
            GoldenSetVersion.objects.filter(pk=version_id, status=GoldenSetVersionStatus.BUILDING).update(
                status=GoldenSetVersionStatus.FAILED, failure_reason=reason[:2000])
        raise


GOLDEN_ITEM_COLUMNS = ("version_id", "position", "item_id", "source", "external_id", "content_sha256", "parts",
                       "metadata", "gold_label", "decided_by", "labels", "llm", "lineage", "export_head")
JSON_COLUMNS = {"parts", "metadata", "labels", "llm", "lineage"}


def _write_items(*, version: GoldenSetVersion, keys: list[ItemKey], included: dict[int, _Included],
                 llm: dict[int, dict], names: dict[int, LabelerName],
                 on_progress: Callable[[int, int], None] | None) -> tuple[Digest, HeadsDigest]:
    """Runs inside the freeze's transaction: snapshot the items in digest order with plain
    INSERTs (JSON passed through as text), feeding the digest as it goes."""
    cast = "::jsonb" if connection.vendor == "postgresql" else ""
    queue_names = review_queue_names()
    placeholders = ", ".join(f"%s{cast}" if column in JSON_COLUMNS else "%s" for column in GOLDEN_ITEM_COLUMNS)
    insert = (f"INSERT INTO {GoldenItem._meta.db_table} ({', '.join(GOLDEN_ITEM_COLUMNS)}) "
              f"VALUES ({placeholders})")
    policy_version = str(version.policy_version)
    key = version.golden_set.pseudonym_key
    aliases = {pk: pseudonym(key, vendor, external_id) for pk, (vendor, external_id) in names.items()}
    dumps = orjson.dumps
    digest, heads = Digest(), HeadsDigest()
    for start in range(0, len(keys), ID_CHUNK):
        chunk = keys[start:start + ID_CHUNK]
        stored = content_item_snapshots(item_ids=[pk for _, _, pk in chunk])
        rows = []
        for offset, (source, external_id, pk) in enumerate(chunk):
            parts, metadata, content_sha256 = stored[pk]
            entry = included[pk]
            # Stored in digest order, so that verifying an export needs no sort.
            ordered = sorted(entry.labels,
                             key=lambda e: (names[e[0]].vendor, e[1], e[2], names[e[0]].external_id, e[3]))
            # The rules each labeler named go in the frozen labels (error analysis groups by them),
            # not in the export head: exports keep their shape.
            labels = [{"labeler_id": labeler_pk, "labeler": names[labeler_pk].external_id,
                       "vendor": names[labeler_pk].vendor, "role": role, "label": label, "labeled_at": labeled_at,
                       "rule_ids": list(rule_ids)}
                      for labeler_pk, role, label, labeled_at, rule_ids in ordered]
            decision = llm.get(pk)
            lineage = {"policy_version": policy_version,
                       "prompt_version": decision["prompt_version"] if decision else None,
                       "run": decision["run"] if decision else None,
                       "queues": sorted(queue_names[q] for q in entry.queues)}
            # The export's line up to its labels, the labelers as their pseudonyms (same keys, same order).
            public = [{"labeler": aliases[labeler_pk], "vendor": names[labeler_pk].vendor, "role": role,
                       "label": label, "labeled_at": labeled_at} for labeler_pk, role, label, labeled_at, _ in ordered]
            head = dumps({"external_id": external_id, "source": source, "content_sha256": content_sha256,
                          "gold_label": entry.gold_label, "decided_by": entry.decided_by, "labels": public})[:-1]
            rows.append((version.pk, start + offset, pk, source, external_id, content_sha256, parts,
                         metadata, entry.gold_label, entry.decided_by, dumps(labels).decode(),
                         dumps(decision).decode() if decision else None, dumps(lineage).decode(), head.decode()))
            digest.add(canonical_line(
                source=source, external_id=external_id, content_sha256=content_sha256,
                gold_label=entry.gold_label, decided_by=entry.decided_by,
                labels=[(names[labeler_pk].vendor, role, label) for labeler_pk, role, label, *_ in entry.labels]))
        heads.add_heads([row[-1].encode() for row in rows])
        with connection.cursor() as cursor:
            cursor.executemany(insert, rows)
        if on_progress:
            on_progress(min(start + ID_CHUNK, len(keys)), len(keys))
    return digest, heads


def _lineage_summary(policy_version: PolicyVersion, included: dict[int, _Included],
                     llm: dict[int, dict]) -> dict[str, Any]:
    """What ``exports.lineage_of`` finds in the items' lineage columns, from the freeze's own data."""
    queue_names = review_queue_names()
    decisions = [llm[pk] for pk in included if pk in llm]
    return {"policy_version": str(policy_version),
            "runs": sorted({d["run"] for d in decisions if d["run"]}),
            "prompt_versions": sorted({d["prompt_version"] for d in decisions if d["prompt_version"]}),
            "queues": sorted({queue_names[q] for entry in included.values() for q in entry.queues})}


@transaction.atomic(durable=True)
def _build(*, version_id: int, on_progress: Callable[[int, int], None] | None) -> GoldenSetVersion:
    version = (GoldenSetVersion.objects.select_for_update().select_related("golden_set", "policy_version__policy")
               .get(pk=version_id))
    if version.status != GoldenSetVersionStatus.BUILDING:
        return version
    rule = FreezeRule(**version.freeze_rule)
    policy_version = version.policy_version
    taxonomy = list(policy_version.labels.order_by("position", "pk").values_list("key", flat=True))
    llm = _llm_decisions(policy_version)
    included, excluded = _select(policy_version, rule, set(taxonomy), llm)
    if not included:
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(excluded.items())) or "no labelled items"
        raise NothingToFreeze(f"No item of {policy_version} qualifies for {version.golden_set.name} under "
                              f"{rule.as_dict()} (left out: {reasons}).")
    names = labeler_names()
    keys = _item_keys(list(included))
    digest, heads = _write_items(version=version, keys=keys, included=included, llm=llm, names=names,
                                 on_progress=on_progress)
    parent = (GoldenSetVersion.objects.filter(golden_set=version.golden_set, status=GoldenSetVersionStatus.FROZEN)
              .order_by("-number").first())
    if parent is not None and parent.digest == digest.hexdigest() and parent.policy_version_id == policy_version.pk:
        return _unchanged(version, parent)
    version.stats = _statistics(version=version, included=included, taxonomy=taxonomy, names=names)
    version.number = (GoldenSetVersion.objects.filter(golden_set=version.golden_set)
                      .aggregate(top=Max("number"))["top"] or 0) + 1
    version.parent = parent
    version.item_count = len(keys)
    version.label_distribution = dict(sorted(Counter(entry.gold_label for entry in included.values()).items()))
    version.excluded = dict(sorted(excluded.items()))
    version.digest = digest.hexdigest()
    version.heads_sha256 = heads.hexdigest()
    version.lineage_summary = _lineage_summary(policy_version, included, llm)
    version.status = GoldenSetVersionStatus.FROZEN
    version.frozen_at = timezone.now()
    version.frozen_by = version.created_by
    version.save()
    audit_event_record(actor=version.created_by, event_type="goldset.frozen", obj=version,
                       details={"number": version.number, "items": version.item_count, "digest": version.digest})
    return version


def _unchanged(version: GoldenSetVersion, parent: GoldenSetVersion) -> GoldenSetVersion:
    """Runs inside the freeze's transaction: the freeze matched ``parent`` item for item, so
    its snapshot is dropped and the request says so instead of making an identical version."""
    GoldenItem.objects.filter(version=version).delete()
    version.status, version.parent, version.digest = GoldenSetVersionStatus.UNCHANGED, parent, parent.digest
    version.item_count = parent.item_count
    version.save()
    audit_event_record(actor=version.created_by, event_type="goldset.freeze_unchanged", obj=version,
                       details={"same_as": str(parent), "digest": parent.digest})
    return version


def _fail_stale_freezes(*, golden_set: GoldenSet | None, stale_after_seconds: float, noticed_by: str) -> list[int]:
    cutoff = timezone.now() - timedelta(seconds=stale_after_seconds)
    building = GoldenSetVersion.objects.filter(status=GoldenSetVersionStatus.BUILDING, created_at__lt=cutoff)
    if golden_set is not None:
        building = building.filter(golden_set=golden_set)
    stale = list(building.values_list("pk", flat=True))
    reason = (f"interrupted: still building after {stale_after_seconds:.0f} s, noticed by {noticed_by} "
              "(the process that ran it was killed or lost; nothing of it was kept)")
    for version_id in stale:
        with transaction.atomic():
            updated = GoldenSetVersion.objects.filter(pk=version_id, status=GoldenSetVersionStatus.BUILDING).update(
                status=GoldenSetVersionStatus.FAILED, failure_reason=reason)
            if updated:
                audit_event_record(actor=None, event_type="goldset.freeze_interrupted",
                                   obj=GoldenSetVersion.objects.get(pk=version_id), details={"reason": reason})
    return stale


def goldset_freeze_watchdog(*, stale_after_seconds: float = FREEZE_STALE_AFTER_SECONDS) -> list[int]:
    """Mark freezes still building after ``stale_after_seconds`` (beyond any task's time limit)
    as failed: their worker or CLI process died and nothing of them was committed. Returns their
    ids. A new freeze request of the same golden set does the same for that set at once."""
    return _fail_stale_freezes(golden_set=None, stale_after_seconds=stale_after_seconds,
                               noticed_by="the watchdog")


def goldset_version_stats_compute(*, version: GoldenSetVersion) -> dict:
    """Recompute a frozen version's statistics from its frozen items alone (the stored ones are
    computed the same way at freeze time); reads only, and nothing outside the version."""
    included: dict[int, _Included] = {}
    names: dict[int, LabelerName] = {}
    rows = (GoldenItem.objects.filter(version=version).order_by("position")
            .values_list("item_id", "gold_label", "decided_by", "labels").iterator(chunk_size=10_000))
    for item_id, gold_label, decided_by, labels in rows:
        included[item_id] = _Included(gold_label, decided_by, [
            (label["labeler_id"], label["role"], label["label"], label["labeled_at"]) for label in labels])
        for label in labels:
            names[label["labeler_id"]] = LabelerName(label["vendor"], label["labeler"])
    taxonomy = list(version.policy_version.labels.order_by("position", "pk").values_list("key", flat=True))
    return _statistics(version=version, included=included, taxonomy=taxonomy, names=names)


__all__ = ["NothingToFreeze", "goldset_version_build", "goldset_version_freeze_request"]


def goldset_version_hidden_gold_add(*, version: GoldenSetVersion,
                                    acting_user: AbstractBaseUser | None = None) -> int:
    """Every human-decided item of a frozen version becomes hidden gold for its policy
    version's vendor review queues (items auto-accepted from LLM votes are not gold for people).
    Returns how many were added; items that are gold already are left as they are."""
    if version.status != GoldenSetVersionStatus.FROZEN:
        raise InvalidStateTransition(f"{version} is {version.status}: only a frozen version is gold")
    labels = version.items.exclude(decided_by=DecidedBy.LLM_AUTO_ACCEPTED).values_list("item_id", "gold_label")
    return hidden_gold_add(policy_version=version.policy_version, labels=labels,
                           origin_detail=f"{version.golden_set.name} v{version.number}", acting_user=acting_user)
