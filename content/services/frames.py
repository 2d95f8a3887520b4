"""Draw a sample from a frame outside the database (Parquet or CSV, any size) and import only
its members, with their inclusion probabilities and the frame's N and stratum sizes."""

from __future__ import annotations

import datetime
import decimal
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from content import frames
from content.contentfile import ParsedItem, _check_item
from content.images import StoredImage, image_store
from content.models import ContentImport, ContentItem, ImportJob, Sample, SampleMember
from content.services.content import _Counters, _limits, _records, _save_counters, _write_batch
from content.services.sampling import SamplingFailed
from touchstone.audit import audit_event_record
from touchstone.lines import LineError
from touchstone.roles import permission_require

SELECTION_EQUAL = "simple random sampling without replacement within each stratum (bottom-n of hashed ids): exact π"
SELECTION_PPS = ("order sampling, sequential Poisson (Ohlsson 1998): stored π are the target πps probabilities "
                 "(exact for certainty units, approximate for the rest)")


@dataclass(frozen=True)
class FrameContent:
    """Where the members' content comes from: frame columns (``parts``: frame column names that
    are content parts; ``metadata``: other columns to keep, None = every other column) or a
    content file keyed by external id."""

    parts: tuple[str, ...] | None = None
    metadata: tuple[str, ...] | None = None
    content_file: Path | None = None


def _failed(exc: frames.FrameError) -> SamplingFailed:
    return SamplingFailed(str(exc), extra={"path": exc.path, "row": exc.row, "column": exc.column,
                                           "reason": exc.reason})


def _json_value(value: Any) -> Any:
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    return value


def _items_from_frame(frame: frames.Frame, draw: frames.FrameDraw, content: FrameContent) -> list[ParsedItem]:
    design = draw.plan.design
    limits = _limits()
    names = frame.dataset.schema.names
    if content.parts is not None:
        parts = list(content.parts)
        for part in parts:
            if part not in limits.parts:
                raise SamplingFailed(f"--parts {part!r}: not a content part; allowed: {', '.join(limits.parts)}")
    else:
        parts = [c for c in names if c in limits.parts]
    if not parts:
        raise SamplingFailed(f"{frame.location}: no content column: name parts with --parts (allowed: "
                             f"{', '.join(limits.parts)}) or give --content-file", extra={"path": frame.location})
    skip = {design.id_column, *parts}
    metadata = list(content.metadata) if content.metadata is not None else [c for c in names if c not in skip]
    try:
        wanted = [design.id_column, *parts, *metadata, *([design.score_column] if design.score_column else [])]
        records = frames.member_rows(frame, draw.members, list(dict.fromkeys(wanted)))
    except frames.FrameError as exc:
        raise _failed(exc) from exc
    items = []
    for record, drawn in zip(records, draw.members.column("id").to_pylist(), strict=True):
        if record[design.id_column] != drawn:  # the file changed between the draw and the read
            raise SamplingFailed(f"{record['_path']}: {record['_row']}: the frame changed while it was read "
                                 f"(expected id {drawn!r}, found {record[design.id_column]!r})")
        scores = {}
        if design.score_column:
            scores[design.score_column] = record[design.score_column]
        try:
            items.append(_check_item(record["_path"], record["_line"], record[design.id_column],
                                     {p: record[p] for p in parts}, [], "",
                                     {m: _json_value(record[m]) for m in metadata}, scores, limits))
        except LineError as error:
            raise SamplingFailed(f"{record['_path']}: {record['_row']}: column {error.field!r}: {error.reason}",
                                 extra={"path": record["_path"], "row": record["_row"], "column": error.field,
                                        "reason": error.reason}) from error
    return items


def _items_from_file(path: Path, wanted: set[str]) -> list[ParsedItem]:
    """The drawn ids' items from a content file (JSONL or CSV, as ``content import`` reads it),
    read in one streaming pass; every drawn id must be there."""
    kind = "csv" if path.suffix.lower() == ".csv" else "jsonl"
    found: dict[str, ParsedItem] = {}
    first_error: LineError | None = None  # the first unreadable line, to explain a missing id
    unreadable = 0
    try:
        with path.open(encoding="utf-8", newline="" if kind == "csv" else None) as handle:
            for record in _records(handle, path=str(path), kind=kind):
                if isinstance(record, LineError):
                    unreadable += 1
                    first_error = first_error or record
                elif record.external_id in wanted:
                    if record.external_id in found:
                        raise SamplingFailed(f"{path}:{record.line}: external_id: {record.external_id!r} appears "
                                             f"again (first at line {found[record.external_id].line})")
                    found[record.external_id] = record
    except OSError as exc:
        raise SamplingFailed(f"{path}: cannot open: {exc.strerror or exc}", extra={"path": str(path)}) from exc
    except UnicodeDecodeError as exc:
        raise SamplingFailed(f"{path}: not UTF-8 text: {exc.reason}", extra={"path": str(path)}) from exc
    missing = sorted(wanted - set(found))
    if missing:
        hint = f"; {unreadable} lines could not be read, first: {first_error}" if first_error else ""
        raise SamplingFailed(f"{path}: {len(missing)} drawn ids are not in the content file (first: "
                             f"{missing[0]!r}){hint}", extra={"path": str(path)})
    return list(found.values())


def sample_draw(*, name: str, frame_location: str, design: frames.Design, source: str | None = None,
                content: FrameContent | None = None, acting_user: AbstractBaseUser | None) -> Sample:
    """Draw ``design`` from the frame at ``frame_location`` (see ``content.frames``), then import
    the members' content (from the frame's columns or a content file) and store the sample.

    The frame is read first, outside any transaction; the items, the sample and its members are
    written in one transaction, so a failure leaves nothing behind. Members keep their stratum
    and inclusion probability; the sample keeps the frame's N, stratum sizes and the design.
    Raises SamplingFailed naming the file, row and column at fault; PermissionDenied.
    """
    permission_require(acting_user, "content.add_sample", to="draw a sample")
    content = content or FrameContent()
    if Sample.objects.filter(name=name).exists():
        raise SamplingFailed(f"a sample named {name!r} exists already: samples are never redrawn")
    source = (source or frame_location)[-100:]
    try:
        design.check()
        frame = frames.open_frame(frame_location)
        frames.check_columns(frame, [*(content.parts or ()), *(content.metadata or ())])  # before the long read
        drawn = frames.draw(frame, design)
    except frames.FrameError as exc:
        raise _failed(exc) from exc
    ids = [str(i).strip() for i in drawn.members.column("id").to_pylist()]  # as external ids are stored
    if content.content_file is not None:
        items = _items_from_file(content.content_file, set(ids))
    else:
        items = _items_from_frame(frame, drawn, content)
    base_dir = content.content_file.resolve().parent if content.content_file else Path.cwd()
    stored = [(item, [image_store(ref, base_dir=base_dir) for ref in item.images]) for item in items]
    try:
        return _sample_store(name=name, frame=frame, drawn=drawn, source=source, ids=ids, items=stored,
                             content=content, acting_user=acting_user)
    except IntegrityError as exc:  # another draw stored the same name or items meanwhile
        raise SamplingFailed(f"sample {name!r} or some of its items were stored concurrently by another "
                             "draw; run it again") from exc


@transaction.atomic(durable=True)
def _sample_store(*, name: str, frame: frames.Frame, drawn: frames.FrameDraw, source: str, ids: list[str],
                  items: list[tuple[ParsedItem, list[StoredImage]]], content: FrameContent,
                  acting_user: AbstractBaseUser | None) -> Sample:
    if Sample.objects.filter(name=name).exists():  # drawn concurrently under the same name
        raise SamplingFailed(f"a sample named {name!r} exists already: samples are never redrawn")
    design = drawn.plan.design
    read_from = str(content.content_file) if content.content_file else frame.location
    job = ContentImport.objects.create(source=source, path=read_from[:1000], strict=True, started_by=acting_user)
    counters = _Counters(lines=len(items))
    for start in range(0, len(items), 500):
        conflicts = _write_batch(job, source, items[start:start + 500], counters, {}, path=read_from)
        if conflicts:
            raise SamplingFailed(f"{conflicts[0]}", extra={"path": read_from})
    _save_counters(job, counters, [])
    ContentImport.objects.filter(pk=job.pk).update(status=ImportJob.Status.FINISHED, finished_at=timezone.now())
    pk_of: dict[str, int] = {}
    for start in range(0, len(ids), 1000):
        pk_of.update(ContentItem.objects.filter(source=source, external_id__in=ids[start:start + 1000])
                     .values_list("external_id", "pk"))
    members = drawn.members
    parameters: dict[str, Any] = {
        "frame": frame.location, "design": design.kind, "id_column": design.id_column,
        "weight_column": design.weight_column, "stratify_by": design.stratify_by,
        "score_column": design.score_column, "floor": design.floor if design.kind == "score_weighted" else None,
        "allocation": "proportional" + (" to size" if design.weighted and design.stratify_by else ""),
        "selection": SELECTION_PPS if design.weighted else SELECTION_EQUAL,
        "frame_weight": drawn.plan.total_weight if design.weighted else None, "passes": drawn.passes,
        "content": read_from, "source": source,
    }
    parameters = {k: v for k, v in parameters.items() if v is not None}
    probabilities = members.column("pi").to_pylist()
    sample = Sample.objects.create(
        name=name, method=design.kind, parameters=parameters, seed=design.seed,
        frame_filter={"frame": frame.location, "format": frame.format, "files": len(frame.paths)},
        frame_size=drawn.plan.frame_size, requested_size=design.size, size=members.num_rows,
        expected_size=float(sum(s.sample for s in drawn.plan.strata.values())),  # Σ π over the frame
        strata=drawn.strata, created_by=acting_user)
    SampleMember.objects.bulk_create(
        (SampleMember(sample=sample, item_id=pk_of[external_id], stratum=stratum, inclusion_probability=float(p))
         for external_id, stratum, p in zip(ids, members.column("stratum").to_pylist(), probabilities,
                                            strict=True)), batch_size=1000)
    audit_event_record(actor=acting_user, event_type="sample.drawn", obj=sample,
                       details={"method": design.kind, "size": sample.size, "frame_size": sample.frame_size,
                                "seed": design.seed, "imported": counters.imported, **parameters})
    return sample
