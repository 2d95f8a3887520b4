"""Golden-set writes: request a freeze, build (freeze) a version, all or nothing."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import orjson
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from goldsets.db import iso_utc, json_text, raw_rows
from goldsets.freeze import Digest, FreezeRule, canonical_line, decide_gold, item_order_key, pseudonym
from goldsets.models import DecidedBy, GoldenItem, GoldenSet, GoldenSetVersion, GoldenSetVersionStatus
from goldsets.stats import accuracy_against_gold, agreement_summary
from labeling.models import (
    ContentItem,
    DecisionOutcome,
    HumanLabel,
    HumanLabelRole,
    ItemDecision,
    Judgement,
    Labeler,
    ReviewQueue,
)
from policies.models import PolicyVersion
from touchstone.audit import audit_event_record
from touchstone.errors import ApplicationError, InvalidStateTransition, LocatedError

logger = logging.getLogger(__name__)

ID_CHUNK = 2000
BOOTSTRAP_RESAMPLES = 1000


class NothingToFreeze(ApplicationError):
    code = "nothing_to_freeze"
    status = 422


@transaction.atomic(durable=True)
def goldset_version_freeze_request(*, name: str, policy_version: PolicyVersion, rule: FreezeRule,
                                   changelog: str = "", description: str = "",
                                   acting_user: AbstractBaseUser | None = None) -> GoldenSetVersion:
    """Create the golden set ``name`` if needed and a building version to freeze.

    Raises LocatedError when the set exists for another policy.
    """
    golden_set, created = GoldenSet.objects.get_or_create(
        name=name, defaults={"policy": policy_version.policy, "description": description, "created_by": acting_user})
    if golden_set.policy_id != policy_version.policy_id:
        raise LocatedError(f"golden set {name!r} belongs to policy {golden_set.policy.slug!r}, "
                           f"not {policy_version.policy.slug!r}", field="--policy")
    if created and acting_user is not None:
        golden_set.owners.add(acting_user)
        audit_event_record(actor=acting_user, event_type="goldset.created", obj=golden_set)
    version = GoldenSetVersion.objects.create(golden_set=golden_set, policy_version=policy_version,
                                              freeze_rule=rule.as_dict(), changelog=changelog,
                                              created_by=acting_user)
    audit_event_record(actor=acting_user, event_type="goldset.freeze_requested", obj=version,
                       details={"rule": rule.as_dict(), "policy_version": str(policy_version)})
    return version


@dataclass
class _Included:
    gold_label: str
    decided_by: str
    labels: list[tuple[int, str, str, str]]  # labeler pk, role, label, labeled_at ISO
    queues: tuple[int, ...] = ()  # review queues the labels came through


def _labels_by_item(policy_version: PolicyVersion) -> Iterator[tuple[int, list[tuple]]]:
    """Stream the policy version's human labels grouped by item, in item order."""
    rows = raw_rows("SELECT item_id, labeler_id, role, label, is_valid, labeled_at, queue_id "
                    f"FROM {HumanLabel._meta.db_table} "
                    "WHERE policy_version_id = %s ORDER BY item_id, labeler_id, role", [policy_version.pk])
    current, group = None, []
    for row in rows:
        if row[0] != current and group:
            yield current, group
            group = []
        current = row[0]
        group.append(row)
    if group:
        yield current, group


def _llm_decisions(policy_version: PolicyVersion) -> dict[int, dict]:
    """The newest LLM decision per item under this policy version's prompts."""
    decisions: dict[int, dict] = {}
    rows = (ItemDecision.objects.filter(run__prompt_version__policy_version=policy_version)
            .order_by("item_id", "created_at")
            .values_list("item_id", "run_id", "run__name", "run__prompt_version__sha256", "outcome", "reason",
                         "label", "confidence", "votes").iterator(chunk_size=10_000))
    for item_id, run_id, run_name, prompt_sha, outcome, reason, label, confidence, votes in rows:
        decisions[item_id] = {"run_id": run_id, "run": run_name, "prompt_version": prompt_sha, "outcome": outcome,
                              "reason": reason, "label": label, "confidence": confidence, "votes": votes}
    return decisions


def _select(policy_version: PolicyVersion, rule: FreezeRule, taxonomy: set[str],
            llm: dict[int, dict]) -> tuple[dict[int, _Included], Counter]:
    included: dict[int, _Included] = {}
    excluded: Counter = Counter()
    labelled: set[int] = set()
    for item_id, rows in _labels_by_item(policy_version):
        labelled.add(item_id)
        valid = [r for r in rows if r[4] and r[3] in taxonomy]
        excluded["invalid_labels_ignored"] += len(rows) - len(valid)
        review = [r[3] for r in valid if r[2] == HumanLabelRole.REVIEW]
        adjudicated = next((r[3] for r in valid if r[2] == HumanLabelRole.ADJUDICATION), None)
        decision = decide_gold(review, adjudicated, rule)
        if decision.gold_label is None:
            excluded[decision.excluded_because] += 1
            continue
        included[item_id] = _Included(decision.gold_label, decision.decided_by,
                                      [(r[1], r[2], r[3], iso_utc(r[5])) for r in valid],
                                      tuple(sorted({r[6] for r in valid if r[6] is not None})))
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


def _item_keys(item_ids: list[int]) -> list[tuple[str, str, int]]:
    keys = []
    for start in range(0, len(item_ids), ID_CHUNK):
        chunk = item_ids[start:start + ID_CHUNK]
        keys += [(s, e, pk) for pk, s, e in
                 ContentItem.objects.filter(pk__in=chunk).values_list("pk", "source", "external_id")]
    keys.sort(key=lambda key: item_order_key(key[0], key[1]))
    return keys


def _labeler_names() -> dict[int, tuple[str, str]]:
    return {pk: (vendor, external_id) for pk, vendor, external_id in
            Labeler.objects.values_list("pk", "vendor__name", "external_id")}


def _statistics(*, version: GoldenSetVersion, included: dict[int, _Included], taxonomy: list[str],
                names: dict[int, tuple[str, str]]) -> dict:
    key = version.golden_set.pseudonym_key
    aliases = {pk: pseudonym(key, vendor, labeler) for pk, (vendor, labeler) in names.items()}
    alias = aliases.__getitem__

    units = [{alias(pk): label for pk, role, label, _ in entry.labels if role == HumanLabelRole.REVIEW}
             for entry in included.values() if entry.labels]
    stats = agreement_summary(units, taxonomy, ordered=version.policy_version.ordered_labels,
                              n_resamples=BOOTSTRAP_RESAMPLES, seed=version.pk or 0)
    gold = {item_id: entry.gold_label for item_id, entry in included.items()}
    reviews = [(pk, item_id, label) for item_id, entry in included.items()
               for pk, role, label, _ in entry.labels if role == HumanLabelRole.REVIEW]
    by_labeler = accuracy_against_gold(((alias(pk), i, label) for pk, i, label in reviews), gold, taxonomy)
    by_vendor = accuracy_against_gold(((names[pk][0], i, label) for pk, i, label in reviews), gold, taxonomy)
    vendors = {alias(pk): names[pk][0] for pk, _, _ in reviews}
    stats["labelers"] = sorted(
        ({"labeler": name, "vendor": vendors[name], **row, "kappa": row["kappa"].as_dict()}
         for name, row in by_labeler.items()), key=lambda row: row["labeler"])
    stats["vendors"] = sorted(({"vendor": name, **row, "kappa": row["kappa"].as_dict()}
                               for name, row in by_vendor.items()), key=lambda row: row["vendor"])
    stats["llm_voters"] = _llm_voter_accuracy(version.policy_version, gold, taxonomy)
    return stats


def _llm_voter_accuracy(policy_version: PolicyVersion, gold: dict[int, str], taxonomy: list[str]) -> list[dict]:
    rows = (Judgement.objects.filter(run__prompt_version__policy_version=policy_version, status="ok")
            .values_list("run__name", "voter__position", "voter__model", "item_id", "label")
            .iterator(chunk_size=10_000))
    ratings = ((f"{run} #{position} {model}", item_id, label) for run, position, model, item_id, label in rows)
    scores = accuracy_against_gold(ratings, gold, taxonomy)
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
    if version.status == GoldenSetVersionStatus.FROZEN:
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
                       "metadata", "gold_label", "decided_by", "labels", "llm", "lineage")
JSON_COLUMNS = {"parts", "metadata", "labels", "llm", "lineage"}


def _write_items(*, version: GoldenSetVersion, keys: list[tuple[str, str, int]], included: dict[int, _Included],
                 llm: dict[int, dict], names: dict[int, tuple[str, str]],
                 on_progress: Callable[[int, int], None] | None) -> Digest:
    """Runs inside the freeze's transaction: snapshot the items in digest order with plain
    INSERTs (JSON passed through as text), feeding the digest as it goes."""
    cast = "::jsonb" if connection.vendor == "postgresql" else ""
    queue_names = dict(ReviewQueue.objects.values_list("pk", "name"))
    placeholders = ", ".join(f"%s{cast}" if column in JSON_COLUMNS else "%s" for column in GOLDEN_ITEM_COLUMNS)
    insert = (f"INSERT INTO {GoldenItem._meta.db_table} ({', '.join(GOLDEN_ITEM_COLUMNS)}) "
              f"VALUES ({placeholders})")
    content = ContentItem._meta.db_table
    policy_version = str(version.policy_version)
    digest = Digest()
    for start in range(0, len(keys), ID_CHUNK):
        chunk = keys[start:start + ID_CHUNK]
        ids = [pk for _, _, pk in chunk]
        stored = {row[0]: row[1:] for row in raw_rows(
            f"SELECT id, parts, metadata, content_sha256 FROM {content} WHERE id IN ({', '.join(['%s'] * len(ids))})",
            ids)}
        rows = []
        for offset, (source, external_id, pk) in enumerate(chunk):
            parts, metadata, content_sha256 = stored[pk]
            entry = included[pk]
            # Stored in digest order, so that verifying an export needs no sort.
            ordered = sorted(entry.labels, key=lambda e: (names[e[0]][0], e[1], e[2], names[e[0]][1], e[3]))
            labels = [{"labeler_id": labeler_pk, "labeler": names[labeler_pk][1], "vendor": names[labeler_pk][0],
                       "role": role, "label": label, "labeled_at": labeled_at}
                      for labeler_pk, role, label, labeled_at in ordered]
            decision = llm.get(pk)
            lineage = {"policy_version": policy_version,
                       "prompt_version": decision["prompt_version"] if decision else None,
                       "run": decision["run"] if decision else None,
                       "queues": sorted(queue_names[q] for q in entry.queues)}
            rows.append((version.pk, start + offset, pk, source, external_id, content_sha256, json_text(parts),
                         json_text(metadata), entry.gold_label, entry.decided_by, orjson.dumps(labels).decode(),
                         orjson.dumps(decision).decode() if decision else None, orjson.dumps(lineage).decode()))
            digest.add(canonical_line(
                source=source, external_id=external_id, content_sha256=content_sha256,
                gold_label=entry.gold_label, decided_by=entry.decided_by,
                labels=[(names[labeler_pk][0], role, label) for labeler_pk, role, label, _ in entry.labels]))
        with connection.cursor() as cursor:
            cursor.executemany(insert, rows)
        if on_progress:
            on_progress(min(start + ID_CHUNK, len(keys)), len(keys))
    return digest


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
    names = _labeler_names()
    keys = _item_keys(list(included))
    digest = _write_items(version=version, keys=keys, included=included, llm=llm, names=names,
                          on_progress=on_progress)
    parent = (GoldenSetVersion.objects.filter(golden_set=version.golden_set, status=GoldenSetVersionStatus.FROZEN)
              .order_by("-number").first())
    version.stats = _statistics(version=version, included=included, taxonomy=taxonomy, names=names)
    version.number = (GoldenSetVersion.objects.filter(golden_set=version.golden_set)
                      .aggregate(top=Max("number"))["top"] or 0) + 1
    version.parent = parent
    version.item_count = len(keys)
    version.label_distribution = dict(sorted(Counter(entry.gold_label for entry in included.values()).items()))
    version.excluded = dict(sorted(excluded.items()))
    version.digest = digest.hexdigest()
    version.status = GoldenSetVersionStatus.FROZEN
    version.frozen_at = timezone.now()
    version.frozen_by = version.created_by
    version.save()
    audit_event_record(actor=version.created_by, event_type="goldset.frozen", obj=version,
                       details={"number": version.number, "items": version.item_count, "digest": version.digest})
    return version


def goldset_freeze_watchdog(*, stale_after_seconds: float) -> list[int]:
    """Mark freezes still building after ``stale_after_seconds`` (beyond any task's time limit)
    as failed: their worker died and nothing of them was committed. Returns their ids."""
    cutoff = timezone.now() - timedelta(seconds=stale_after_seconds)
    stale = list(GoldenSetVersion.objects.filter(status=GoldenSetVersionStatus.BUILDING, created_at__lt=cutoff)
                 .values_list("pk", flat=True))
    for version_id in stale:
        with transaction.atomic():
            updated = GoldenSetVersion.objects.filter(pk=version_id, status=GoldenSetVersionStatus.BUILDING).update(
                status=GoldenSetVersionStatus.FAILED,
                failure_reason=f"interrupted: still building after {stale_after_seconds:.0f} s (worker lost)")
            if updated:
                audit_event_record(actor=None, event_type="goldset.freeze_interrupted",
                                   obj=GoldenSetVersion.objects.get(pk=version_id))
    return stale


def goldset_version_stats_compute(*, version: GoldenSetVersion) -> dict:
    """Recompute a frozen version's statistics from its frozen items (the stored ones are
    computed the same way at freeze time); reads only."""
    included: dict[int, _Included] = {}
    rows = (GoldenItem.objects.filter(version=version).order_by("position")
            .values_list("item_id", "gold_label", "decided_by", "labels").iterator(chunk_size=10_000))
    for item_id, gold_label, decided_by, labels in rows:
        included[item_id] = _Included(gold_label, decided_by, [
            (label["labeler_id"], label["role"], label["label"], label["labeled_at"]) for label in labels])
    taxonomy = list(version.policy_version.labels.order_by("position", "pk").values_list("key", flat=True))
    return _statistics(version=version, included=included, taxonomy=taxonomy, names=_labeler_names())


__all__ = ["NothingToFreeze", "goldset_version_build", "goldset_version_freeze_request"]
