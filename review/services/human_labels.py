"""Human labels: import historic labels (streaming, batched, atomic per batch)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.db import reset_queries, transaction
from django.utils import timezone

from content.models import ContentItem
from content.services.imports import import_job_run
from policies.models import PolicyVersion, PolicyVersionStatus
from review.labelfile import ParsedLabel, read_labels
from review.models import HumanLabel, Labeler, LabelImport, Vendor
from touchstone.errors import LocatedError
from touchstone.lines import LineError

MAX_ERRORS_KEPT = 200


@dataclass
class _ImportState:
    """What one import has seen so far (bounded by distinct labelers, not by lines)."""

    labelers: dict[tuple[str, str], int] = field(default_factory=dict)
    lines_read: int = 0
    last_line: int = 0
    imported: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[dict] = field(default_factory=list)


def _labeler_id(state: _ImportState, vendor: str, labeler: str) -> int:
    """Runs inside the batch's transaction."""
    key = (vendor, labeler)
    if key not in state.labelers:
        vendor_row, _ = Vendor.objects.get_or_create(name=vendor)
        state.labelers[key] = Labeler.objects.get_or_create(vendor=vendor_row, external_id=labeler)[0].pk
    return state.labelers[key]


def _resolve_items(external_ids: set[str], content_source: str) -> dict[str, list[tuple[int, str]]]:
    rows = ContentItem.objects.filter(external_id__in=external_ids)
    if content_source:
        rows = rows.filter(source=content_source)
    found: dict[str, list[tuple[int, str]]] = {}
    for pk, external_id, source in rows.values_list("pk", "external_id", "source"):
        found.setdefault(external_id, []).append((pk, source))
    return found


def _write_batch(*, job: LabelImport, batch: list[ParsedLabel], taxonomy: set[str], state: _ImportState,
                 rejects: list[tuple[LineError, bool]]) -> None:
    """Runs inside a transaction: insert one batch's valid, new labels; list the rest in ``rejects``
    as (error, is_duplicate)."""

    def reject(error: LineError, counted: bool = False) -> None:
        rejects.append((error, counted))

    version = job.policy_version
    items = _resolve_items({label.external_id for label in batch}, job.content_source)
    item_pks = {pk for candidates in items.values() for pk, _ in candidates}
    stored = set(HumanLabel.objects.filter(policy_version=version, item_id__in=item_pks)
                 .values_list("item_id", "labeler_id", "role"))
    seen_in_batch: dict[tuple[int, int, str], int] = {}
    fresh = []
    now = timezone.now()
    for label in batch:
        candidates = items.get(label.external_id, [])
        where = f" in source {job.content_source!r}" if job.content_source else ""
        if not candidates:
            reject(LineError(job.path, label.line, "external_id",
                             f"no item {label.external_id!r}{where}: import it with `content import` first"))
            continue
        if len(candidates) > 1:
            sources = ", ".join(sorted(source for _, source in candidates))
            reject(LineError(job.path, label.line, "external_id",
                             f"{label.external_id!r} exists in several sources ({sources}): pass --source"))
            continue
        if label.label not in taxonomy:
            reject(LineError(job.path, label.line, "label",
                             f"{label.label!r} is not in the taxonomy of {version} "
                             f"(allowed: {', '.join(sorted(taxonomy))})"))
            continue
        item_pk = candidates[0][0]
        key = (item_pk, _labeler_id(state, label.vendor, label.labeler), label.role)
        if key in stored or key in seen_in_batch:
            state.duplicates += 1
            earlier = f"line {seen_in_batch[key]}" if key in seen_in_batch else "an earlier import"
            reject(LineError(job.path, label.line, "labeler",
                             f"duplicate: {label.labeler!r} ({label.vendor}) already labelled {label.external_id!r} "
                             f"under {version} ({earlier})"), counted=True)
            continue
        seen_in_batch[key] = label.line
        fresh.append(HumanLabel(
            item_id=item_pk, policy_version=version, labeler_id=key[1], role=label.role, source="import",
            label_import=job, label=label.label, rule_ids=label.rule_ids, rationale=label.rationale,
            seconds_spent=label.seconds_spent, labeled_at=label.labeled_at or now))
    HumanLabel.objects.bulk_create(fresh, batch_size=500)
    state.imported += len(fresh)


def _save_counters(job: LabelImport, state: _ImportState) -> None:
    LabelImport.objects.filter(pk=job.pk).update(
        lines_read=state.lines_read, imported=state.imported, duplicates=state.duplicates, rejected=state.rejected,
        errors=state.errors[:MAX_ERRORS_KEPT])


def human_label_import(*, path: Path, policy_version: PolicyVersion, content_source: str = "", strict: bool = False,
                       acting_user: AbstractBaseUser | None = None, batch_size: int = 1000,
                       on_progress: Callable[[int], None] | None = None,
                       on_error: Callable[[LineError], None] | None = None) -> LabelImport:
    """Import human labels from ``path`` for ``policy_version`` (published or retired).

    Each batch commits on its own; a bad line (unknown item, label outside the taxonomy,
    duplicate (item, labeler), malformed) is reported and skipped. With ``strict``, the first
    bad line raises LocatedError and nothing is kept. ``on_progress`` gets bytes read so far.
    """
    if policy_version.status not in (PolicyVersionStatus.PUBLISHED, PolicyVersionStatus.RETIRED):
        raise LocatedError(f"{policy_version} is {policy_version.status}: labels need a published version",
                           field="--policy")
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise LocatedError(f"cannot open: {exc.strerror or exc}", path=str(path)) from exc
    taxonomy = set(policy_version.labels.values_list("key", flat=True))
    job = LabelImport.objects.create(policy_version=policy_version, content_source=content_source, path=str(path),
                                     strict=strict, started_by=acting_user)
    state = _ImportState()

    def reject(error: LineError, counted: bool = False) -> None:
        if strict:
            raise LocatedError(error.reason, path=error.path, line=error.line, field=error.field)
        if not counted:
            state.rejected += 1
        state.errors.append({"line": error.line, "field": error.field, "reason": error.reason})
        if on_error:
            on_error(error)

    def process(batch: list[ParsedLabel | LineError]) -> None:
        good, rejects = [], []
        for record in batch:
            if record.line != state.last_line:  # a golden-export line holds several labels
                state.lines_read += 1
                state.last_line = record.line
            if isinstance(record, LineError):
                rejects.append((record, False))
            else:
                good.append(record)
        with transaction.atomic():
            _write_batch(job=job, batch=good, taxonomy=taxonomy, state=state, rejects=rejects)
            for error, counted in sorted(rejects, key=lambda pair: pair[0].line):
                reject(error, counted)
            if not strict:
                _save_counters(job, state)
        reset_queries()
        if on_progress:
            on_progress(handle.buffer.tell() if hasattr(handle, "buffer") else 0)

    return import_job_run(job, path=path, handle=handle, records=read_labels(handle, path=str(path)), strict=strict,
                          batch_size=batch_size, process=process, save_counters=lambda: _save_counters(job, state),
                          event_type="labels.imported", acting_user=acting_user)
