"""Import content: streaming, batched, idempotent; bad lines reported and skipped (or, strict,
the whole import rolled back); a bad image fails its item, not the import."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import reset_queries, transaction

from content.contentfile import Limits, ParsedItem, read_csv, read_jsonl
from content.images import StoredImage, image_store
from content.models import ContentImage, ContentImport, ContentItem, ContentItemStatus
from content.services.imports import import_job_run
from touchstone.errors import LocatedError
from touchstone.lines import LineError

MAX_ERRORS_KEPT = 200


def content_sha256(parts: dict[str, str], image_digests: list[str]) -> str:
    canonical = json.dumps({"parts": parts, "images": image_digests}, sort_keys=True, ensure_ascii=False,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _limits() -> Limits:
    return Limits(parts=tuple(settings.CONTENT_PARTS), max_part_chars=settings.CONTENT_MAX_PART_CHARS,
                  max_images=settings.CONTENT_MAX_IMAGES)


@dataclass
class _Counters:
    lines: int = 0
    imported: int = 0
    duplicates: int = 0
    rejected: int = 0
    identical: int = 0
    failed_images: int = 0


def _records(handle, *, path: str, kind: str) -> Iterator[ParsedItem | LineError]:
    reader = read_csv if kind == "csv" else read_jsonl
    return reader(handle, path=path, limits=_limits())


def _write_batch(job: ContentImport, source: str, batch: list[tuple[ParsedItem, list[StoredImage]]],
                 counters: _Counters, first_lines: dict[str, int], *, path: str) -> list[LineError]:
    """Runs inside a transaction: insert the new items of one batch, skip known ones.

    An id seen before with the same content is a duplicate (re-importing is a no-op); with
    different content it is a conflict, returned as a LineError naming where the id was first
    seen (``first_lines``: this file's ids and the line that stored them)."""
    ids = [parsed.external_id for parsed, _ in batch]
    known = dict(ContentItem.objects.filter(source=source, external_id__in=ids)
                 .values_list("external_id", "content_sha256"))
    fresh: dict[str, tuple[ParsedItem, list[StoredImage], str]] = {}
    conflicts: list[LineError] = []
    for parsed, images in batch:
        digest = content_sha256(parsed.parts, [img.sha256 or img.ref for img in images])
        stored = known.get(parsed.external_id) or (fresh[parsed.external_id][2] if parsed.external_id in fresh
                                                   else None)
        if stored is None:
            fresh[parsed.external_id] = (parsed, images, digest)
        elif stored == digest:
            counters.duplicates += 1
        else:
            first = first_lines.get(parsed.external_id) or (
                fresh[parsed.external_id][0].line if parsed.external_id in fresh else None)
            where = f"line {first} of this file" if first else f"an earlier import into source {source!r}"
            conflicts.append(LineError(path, parsed.line, "external_id", (
                f"{parsed.external_id!r} was imported from {where} with different content; "
                "this line is skipped (give it another id, or import it under another source)")))
    digests = [digest for _, _, digest in fresh.values()]
    seen = set(ContentItem.objects.filter(content_sha256__in=digests).values_list("content_sha256", flat=True))
    in_batch: set[str] = set()
    items = []
    for parsed, images, digest in fresh.values():
        if digest in seen or digest in in_batch:
            counters.identical += 1
        in_batch.add(digest)
        failures = [f"image {i}: {img.failure_reason}" for i, img in enumerate(images) if img.failure_reason]
        counters.failed_images += len(failures)
        items.append(ContentItem(
            source=source, external_id=parsed.external_id, parts=parsed.parts, target_part=parsed.target,
            metadata=parsed.metadata, scores=parsed.scores, content_sha256=digest, content_import=job,
            status=ContentItemStatus.FAILED if failures else ContentItemStatus.READY,
            failure_reason="; ".join(failures)))
    created = ContentItem.objects.bulk_create(items, batch_size=500)
    counters.imported += len(created)
    first_lines.update((external_id, parsed.line) for external_id, (parsed, _, _) in fresh.items())
    if any(images for _, images, _ in fresh.values()):
        pk_by_id = dict(ContentItem.objects.filter(source=source, external_id__in=list(fresh))
                        .values_list("external_id", "pk"))
        ContentImage.objects.bulk_create([
            ContentImage(item_id=pk_by_id[external_id], position=i, original_ref=img.ref[:2000], file=img.file,
                         thumbnail=img.thumbnail, width=img.width, height=img.height, sha256=img.sha256,
                         failure_reason=img.failure_reason)
            for external_id, (_, images, _) in fresh.items() for i, img in enumerate(images)])
    return conflicts


def _save_counters(job: ContentImport, counters: _Counters, errors: list[dict[str, object]]) -> None:
    ContentImport.objects.filter(pk=job.pk).update(
        lines_read=counters.lines, imported=counters.imported, duplicates=counters.duplicates,
        rejected=counters.rejected, identical_bodies=counters.identical, failed_images=counters.failed_images,
        errors=errors[:MAX_ERRORS_KEPT])


def content_import(*, path: Path, source: str, strict: bool = False, acting_user: AbstractBaseUser | None = None,
                   batch_size: int = 1000, on_progress: Callable[[int], None] | None = None,
                   on_error: Callable[[LineError], None] | None = None) -> ContentImport:
    """Import ``path`` (JSONL, or CSV by extension) into ``source``.

    Each batch commits on its own; re-importing is a no-op (dedupe on source + external id).
    With ``strict``, the first bad line raises LocatedError and nothing is kept.
    ``on_progress`` receives the bytes read so far.
    """
    if not source.strip():
        raise LocatedError("must not be empty", field="--source")
    kind = "csv" if path.suffix.lower() == ".csv" else "jsonl"
    try:
        handle = path.open(encoding="utf-8", newline="" if kind == "csv" else None)
    except OSError as exc:
        raise LocatedError(f"cannot open: {exc.strerror or exc}", path=str(path)) from exc
    job = ContentImport.objects.create(source=source, path=str(path), strict=strict, started_by=acting_user)
    counters, errors = _Counters(), []
    base_dir = path.resolve().parent

    first_lines: dict[str, int] = {}  # this file's stored ids → their line, to name a conflict's origin

    def reject(record: LineError) -> None:
        if strict:
            raise LocatedError(record.reason, path=record.path, line=record.line, field=record.field)
        counters.rejected += 1
        errors.append({"line": record.line, "field": record.field, "reason": record.reason})
        if on_error:
            on_error(record)

    def process(batch: list[ParsedItem | LineError]) -> None:
        good: list[tuple[ParsedItem, list[StoredImage]]] = []
        for record in batch:
            counters.lines += 1
            if isinstance(record, LineError):
                reject(record)
                continue
            good.append((record, [image_store(ref, base_dir=base_dir) for ref in record.images]))
        with transaction.atomic():
            conflicts = _write_batch(job, source, good, counters, first_lines, path=str(path))
            for conflict in conflicts:
                reject(conflict)
            if not strict:
                _save_counters(job, counters, errors)
        reset_queries()  # with DEBUG on, Django's query log would otherwise grow with the file
        if on_progress:
            on_progress(handle.buffer.tell() if hasattr(handle, "buffer") else 0)

    return import_job_run(job, path=path, handle=handle, records=_records(handle, path=str(path), kind=kind),
                          strict=strict, batch_size=batch_size, process=process,
                          save_counters=lambda: _save_counters(job, counters, errors),
                          event_type="content.imported", acting_user=acting_user)
