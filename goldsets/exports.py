"""Exports of frozen golden-set versions: JSONL, CSV, Parquet, streamed in bounded memory,
each preceded by a digest check, with a ``manifest.json`` and a dataset card."""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import operator
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.json as pa_json
import pyarrow.parquet as pq
from django.conf import settings
from django.db import connection

from goldsets.freeze import Digest, HeadsDigest, canonical_line, pseudonym
from goldsets.models import DecidedBy, GoldenItem, GoldenSetVersion, GoldenSetVersionStatus
from touchstone.db import raw_row_batches, raw_rows
from touchstone.errors import ApplicationError, InvalidStateTransition

FORMATS = ("jsonl", "csv", "parquet")
CHUNK = 2000
PARQUET_ROW_GROUP = 10_000
FILE_CHUNK_LINES = 10_000  # JSONL lines per write of a file export
# Parquet string columns read as stored JSON text beside each line (order of _side_sql).
DECODE_ROWS = 200  # export heads decoded at a time (see _line_batches)
SIDE_COLUMNS = ("metadata", "llm_label", "llm_confidence", "lineage")

SCHEMA = {
    "external_id": "the item's id in its source",
    "source": "the content source it was imported under",
    "components": "the item's text parts by name, as frozen",
    "metadata": "free metadata (surface, language, …) as frozen",
    "content_sha256": "sha256 of the item's canonical content",
    "gold_label": "the gold label: a key of the policy version's taxonomy",
    "decided_by": "unanimous | majority | adjudicated | llm_auto_accepted",
    "labels": "every human label: labeler (pseudonym unless raw ids were asked for), vendor, label, role, labeled_at",
    "llm": "the newest LLM run decision for the item (run, prompt version, outcome, label, confidence, votes) or null",
    "lineage": "policy version, prompt version and run the item came through",
}


class DigestMismatch(ApplicationError):
    """The stored items no longer hash to the version's digest: the data was altered."""

    code = "digest_mismatch"
    status = 500


def _require_frozen(version: GoldenSetVersion) -> None:
    if version.status != GoldenSetVersionStatus.FROZEN:
        raise InvalidStateTransition(f"{version} is {version.status}; only frozen versions can be exported.")


EXPORT_COLUMNS = ("external_id", "source", "parts", "metadata", "content_sha256", "gold_label", "decided_by",
                  "labels", "llm", "lineage")


@dataclass
class StoredItem:
    """One frozen item as stored: JSON columns still as text where the database gives text."""

    external_id: str
    source: str
    parts: Any
    metadata: Any
    content_sha256: str
    gold_label: str
    decided_by: str
    labels: list[dict[str, Any]]
    llm: Any
    lineage: Any


def _loads(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def stored_items(version: GoldenSetVersion, digest: Digest | None = None) -> Iterator[StoredItem]:
    """The version's items in digest order, read with a raw cursor; each one is fed to ``digest``."""
    rows = raw_rows(f"SELECT {', '.join(EXPORT_COLUMNS)} FROM {GoldenItem._meta.db_table} "
                    "WHERE version_id = %s ORDER BY position", [version.pk], chunk=CHUNK)
    for external_id, source, parts, metadata, content_sha256, gold_label, decided_by, labels, llm, lineage in rows:
        labels = _loads(labels)
        if digest is not None:
            digest.add(canonical_line(
                source=source, external_id=external_id, content_sha256=content_sha256, gold_label=gold_label,
                decided_by=decided_by, labels=[(label["vendor"], label["role"], label["label"]) for label in labels]))
        yield StoredItem(external_id, source, parts, metadata, content_sha256, gold_label, decided_by, labels, llm,
                         lineage)


def _check(version: GoldenSetVersion, digest: Digest | HeadsDigest) -> None:
    expected = digest.expected(version)
    if digest.hexdigest() != expected or digest.items != version.item_count:
        what = "export heads" if isinstance(digest, HeadsDigest) else "items"
        raise DigestMismatch(
            f"{version}: stored {what} hash to {digest.hexdigest()} ({digest.items} items), but the version's digest "
            f"is {expected} ({version.item_count} items). The data was altered after freezing; "
            "refusing to export.")


def goldset_version_verify(*, version: GoldenSetVersion) -> str:
    """Recompute the digest from the stored items' columns and again from their export heads
    (what a pseudonymized export writes); raise DigestMismatch if either differs."""
    _require_frozen(version)
    digest = Digest()
    for _ in stored_items(version, digest):
        pass
    _check(version, digest)
    heads = Digest()
    for _ in _line_batches(version, kind="jsonl", raw_ids=False, digest=heads, batch=CHUNK):
        pass
    _check(version, heads)
    if version.heads_sha256:
        raw = HeadsDigest()
        for _ in _line_batches(version, kind="jsonl", raw_ids=False, digest=raw, batch=CHUNK):
            pass
        _check(version, raw)
    return version.digest


def labeler_renamer(version: GoldenSetVersion, *, raw_ids: bool = False) -> Callable[[dict], str]:
    """How a stored label's labeler is shown: its pseudonym in this golden set (from the frozen
    vendor and id alone, so an export reads nothing but the version), or the raw id."""
    if raw_ids:
        return operator.itemgetter("labeler")
    key = version.golden_set.pseudonym_key
    aliases: dict[tuple[str, str], str] = {}

    def rename(label: dict) -> str:
        who = (label["vendor"], label["labeler"])
        alias = aliases.get(who)
        if alias is None:
            alias = aliases[who] = pseudonym(key, *who)
        return alias

    return rename


def _public_labels(item: StoredItem, rename: Callable[[dict], str]) -> list[dict[str, Any]]:
    return [{"labeler": rename(label), "vendor": label["vendor"], "label": label["label"], "role": label["role"],
             "labeled_at": label["labeled_at"]} for label in item.labels]


def export_records(version: GoldenSetVersion, *, raw_ids: bool = False,
                   digest: Digest | None = None) -> Iterator[dict[str, Any]]:
    """The version's items as export records (decoded), in digest order."""
    rename = labeler_renamer(version, raw_ids=raw_ids)
    for item in stored_items(version, digest):
        yield {
            "external_id": item.external_id, "source": item.source, "components": _loads(item.parts),
            "metadata": _loads(item.metadata), "content_sha256": item.content_sha256, "gold_label": item.gold_label,
            "decided_by": item.decided_by, "labels": _public_labels(item, rename), "llm": _loads(item.llm),
            "lineage": _loads(item.lineage),
        }


def _tail_sql(kind: str) -> str:
    """SQL that splices an item's stored JSON columns into the end of its line, as UTF-8 bytes,
    so the database, not Python, copies (and never decodes) the bulk of the bytes. ``jsonl``:
    the export's objects; ``parquet``: the components, the one nested column Arrow's JSON
    reader builds (the flat columns are read beside the line: see ``_side_sql``)."""
    postgres = connection.vendor == "postgresql"
    text, newline = ("::text", "chr(10)") if postgres else ("", "char(10)")
    if kind == "jsonl":
        tail = (f"',\"components\":' || parts{text} || ',\"metadata\":' || metadata{text} || ',\"llm\":' || "
                f"COALESCE(llm{text}, 'null') || ',\"lineage\":' || lineage{text} || '}}' || {newline}")
    else:
        tail = f"',\"components\":' || parts{text} || '}}' || {newline}"
    return f"convert_to({tail}, 'UTF8')" if postgres else f"CAST({tail} AS BLOB)"


def _side_sql(kind: str) -> str:
    """The columns read beside each line, in SIDE_COLUMNS order: Parquet's flat columns
    (metadata and lineage as their stored JSON text, the LLM's label and confidence)."""
    if kind != "parquet":
        return ""
    if connection.vendor == "postgresql":
        return ", metadata::text, llm->>'label', (llm->>'confidence')::float8, lineage::text"
    return ", metadata, json_extract(llm, '$.label'), json_extract(llm, '$.confidence'), lineage"


def _line_batches(version: GoldenSetVersion, *, kind: str, raw_ids: bool, digest: Digest | HeadsDigest | None,
                  batch: int) -> Iterator[tuple[int, bytes, list[tuple]]]:
    """(items so far, ``batch`` JSON lines joined, their side columns) in digest order. Stored
    JSON is spliced in as text, never decoded: with pseudonyms, each line is the item's frozen export head and its
    tail; only the head is decoded, to recompute the digest from exactly what is written."""
    if raw_ids:
        yield from _line_batches_raw_ids(version, kind=kind, digest=digest, batch=batch)
        return
    postgres = connection.vendor == "postgresql"
    head_sql = "convert_to(export_head, 'UTF8')" if postgres else "CAST(export_head AS BLOB)"
    fetched = raw_row_batches(f"SELECT {head_sql}, {_tail_sql(kind)}{_side_sql(kind)} "
                              f"FROM {GoldenItem._meta.db_table} WHERE version_id = %s ORDER BY position",
                              [version.pk], chunk=CHUNK)
    # Decoded DECODE_ROWS at a time: one JSON array of thousands of heads keeps that many
    # objects alive at once, and the garbage collector's passes over them cost more than the
    # per-call overhead saved.
    batches = (rows[start:start + DECODE_ROWS] for rows in fetched for start in range(0, len(rows), DECODE_ROWS))
    with_side = kind == "parquet"
    parts: list[bytes] = []
    side: list[tuple] = []
    n = 0
    # The hot path of every export, a fetch at a time: the heads go to the digest (hashed as
    # bytes, or decoded into canonical lines: see freeze.HeadsDigest and Digest.add_heads).
    for rows in batches:
        if digest is not None:
            digest.add_heads([row[0] for row in rows])
        parts += [part for row in rows for part in row[:2]]
        if with_side:
            side += [row[2:] for row in rows]
        n += len(rows)
        if len(parts) >= 2 * batch:
            yield n, b"".join(parts), side
            parts, side = [], []
    if parts:
        yield n, b"".join(parts), side


def _line_batches_raw_ids(version: GoldenSetVersion, *, kind: str, digest: Digest | None,
                          batch: int) -> Iterator[tuple[int, bytes, list[tuple]]]:
    """The lines with raw labeler ids (a permission of its own, rarely asked for): built from
    the frozen labels column."""
    rows = raw_rows(
        "SELECT external_id, source, content_sha256, gold_label, decided_by, labels, "
        f"{_tail_sql(kind)}{_side_sql(kind)} FROM {GoldenItem._meta.db_table} "
        "WHERE version_id = %s ORDER BY position", [version.pk], chunk=CHUNK)
    dumps, loads = orjson.dumps, orjson.loads
    buffer: list[bytes] = []
    side: list[tuple] = []
    n = 0
    for n, (external_id, source, content_sha256, gold_label, decided_by, labels, tail, *extra) in enumerate(
            rows, start=1):
        labels = loads(labels) if isinstance(labels, str) else labels
        for label in labels:
            del label["labeler_id"]
            label.pop("rule_ids", None)  # the export's labels keep their documented fields
        if digest is not None:
            digest.add(canonical_line(source=source, external_id=external_id, content_sha256=content_sha256,
                                      gold_label=gold_label, decided_by=decided_by,
                                      labels=[(label["vendor"], label["role"], label["label"]) for label in labels]))
        buffer.append(dumps({"external_id": external_id, "source": source, "content_sha256": content_sha256,
                             "gold_label": gold_label, "decided_by": decided_by, "labels": labels})[:-1])
        buffer.append(bytes(tail))
        if extra:
            side.append(tuple(extra))
        if n % batch == 0:
            yield n, b"".join(buffer), side
            buffer, side = [], []
    if buffer:
        yield n, b"".join(buffer), side


def jsonl_chunks(version: GoldenSetVersion, *, raw_ids: bool = False, digest: Digest | HeadsDigest | None = None,
                 on_item: Callable[[int], None] | None = None, lines: int = 500) -> Iterator[bytes]:
    """JSONL, ``lines`` lines per chunk."""
    for done, chunk, _ in _line_batches(version, kind="jsonl", raw_ids=raw_ids, digest=digest, batch=lines):
        yield chunk
        if on_item:
            on_item(done)


CSV_COLUMNS = ["external_id", "source", "content_sha256", "gold_label", "decided_by", "label_count", "labels",
               "llm_label", "llm_confidence", "metadata"]
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula, prefixed with ``'`` so that it
    shows as text (OWASP's advice on CSV injection); other values as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_chunks(version: GoldenSetVersion, *, raw_ids: bool = False, digest: Digest | None = None,
               on_item: Callable[[int], None] | None = None) -> Iterator[bytes]:
    """One row per item; text parts as ``part.<name>`` columns, nested fields as JSON text."""
    parts = list(settings.CONTENT_PARTS)
    out = io.StringIO()
    # RFC 4180's CRLF: the writer then quotes any cell holding a CR or LF (with "\n" it left a
    # lone CR unquoted, which split the row for readers).
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS[:6] + [f"part.{name}" for name in parts] + CSV_COLUMNS[6:])
    for n, record in enumerate(export_records(version, raw_ids=raw_ids, digest=digest), start=1):
        llm = record["llm"] or {}
        writer.writerow([spreadsheet_safe(cell) for cell in (
            record["external_id"], record["source"], record["content_sha256"], record["gold_label"],
            record["decided_by"], len(record["labels"]),
            *[record["components"].get(name, "") for name in parts],
            json.dumps(record["labels"], ensure_ascii=False), llm.get("label", ""),
            "" if llm.get("confidence") is None else llm["confidence"],
            json.dumps(record["metadata"], ensure_ascii=False))])
        if n % 500 == 0:
            yield out.getvalue().encode()
            out.seek(0)
            out.truncate()
            if on_item:
                on_item(n)
    yield out.getvalue().encode()


LABEL_TYPE = pa.struct([("labeler", pa.string()), ("vendor", pa.string()), ("label", pa.string()),
                        ("role", pa.string()), ("labeled_at", pa.string())])


def parquet_schema() -> pa.Schema:
    """Text parts as a struct with one field per allowed part (``CONTENT_PARTS``)."""
    components = pa.struct([(name, pa.string()) for name in settings.CONTENT_PARTS])
    return pa.schema([
        ("external_id", pa.string()), ("source", pa.string()), ("content_sha256", pa.string()),
        ("gold_label", pa.string()), ("decided_by", pa.string()), ("labels", pa.list_(LABEL_TYPE)),
        ("components", components), ("metadata", pa.string()), ("llm_label", pa.string()),
        ("llm_confidence", pa.float64()), ("lineage", pa.string()),
    ])


def write_parquet(version: GoldenSetVersion, sink: Any, *, raw_ids: bool = False,
                  digest: Digest | HeadsDigest | None = None, on_item: Callable[[int], None] | None = None) -> None:
    """Row groups of PARQUET_ROW_GROUP items. Each group is written as JSON lines shaped like
    the schema and parsed by Arrow's (C++, multi-threaded) JSON reader: building the columns
    from Python objects costs several times more."""
    schema = parquet_schema()
    beside = [schema.field(name) for name in SIDE_COLUMNS]
    parsed = pa.schema([field for field in schema if field.name not in SIDE_COLUMNS])
    options = pa_json.ParseOptions(explicit_schema=parsed, unexpected_field_behavior="error")

    def write(lines: bytes, side: list[tuple]) -> None:  # Arrow parses and compresses without the GIL
        table = pa_json.read_json(io.BytesIO(lines), parse_options=options,
                                  read_options=pa_json.ReadOptions(block_size=max(1 << 20, len(lines) + 1)))
        for index, field in enumerate(beside):
            table = table.append_column(field, pa.array([row[index] for row in side], field.type))
        writer.write_table(table.select(schema.names))

    # One writer thread: row group n is parsed and written while Python builds row group n+1;
    # at most one group waits, so memory stays bounded.
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer, ThreadPoolExecutor(max_workers=1) as pool:
        pending: Future | None = None
        for done, lines, side in _line_batches(version, kind="parquet", raw_ids=raw_ids, digest=digest,
                                               batch=PARQUET_ROW_GROUP):
            if pending is not None:
                pending.result()
            pending = pool.submit(write, lines, side)
            if on_item:
                on_item(done)
        if pending is not None:
            pending.result()


def manifest(version: GoldenSetVersion, *, fmt: str, raw_ids: bool, file_name: str | None = None,
             file_sha256: str | None = None) -> dict[str, Any]:
    policy_version = version.policy_version
    return {
        "golden_set": version.golden_set.name,
        "version": version.number,
        "digest": {"sha256": version.digest, "over": "canonical item lines, see goldsets/freeze.py"},
        "items": version.item_count,
        "label_distribution": version.label_distribution,
        "excluded": version.excluded,
        "freeze_rule": version.freeze_rule,
        "policy": {"slug": policy_version.policy.slug, "version": policy_version.number,
                   "content_sha256": policy_version.content_sha256},
        "parent_version": version.parent.number if version.parent else None,
        "frozen_at": version.frozen_at.isoformat() if version.frozen_at else None,
        "frozen_by": version.frozen_by.get_username() if version.frozen_by else None,
        "changelog": version.changelog,
        "format": fmt,
        "file": file_name,
        "file_sha256": file_sha256,
        "labeler_ids": "raw" if raw_ids else "pseudonymized (HMAC-SHA256, stable within this golden set)",
        "schema": SCHEMA,
        "lineage": version.lineage_summary if version.lineage_summary is not None else lineage_of(version),
    }


def lineage_of(version: GoldenSetVersion) -> dict[str, Any]:
    """The runs, prompt versions and queues in the items' lineage columns (a scan: the manifest
    uses the summary the freeze recorded, when it did)."""
    # Distinct lineages are few (one per run × queue combination), however many the items. The
    # empty order_by matters: the model's ordering would add position to the DISTINCT, making
    # every row distinct (it cost an export of 100,000 items 0.8 s).
    lineages = (GoldenItem.objects.filter(version=version).order_by().values_list("lineage", flat=True).distinct()
                .iterator(chunk_size=CHUNK))
    runs, prompts, queues = set(), set(), set()
    for lineage in lineages:
        if lineage.get("run"):
            runs.add(lineage["run"])
        if lineage.get("prompt_version"):
            prompts.add(lineage["prompt_version"])
        queues.update(lineage.get("queues") or [])
    return {"policy_version": str(version.policy_version), "runs": sorted(runs), "prompt_versions": sorted(prompts),
            "queues": sorted(queues)}


def _fmt_estimate(estimate: dict | None) -> str:
    if not estimate:
        return "—"
    if estimate.get("value") is None:
        return f"undefined ({estimate.get('reason')})"
    text = f"{estimate['value']:.3f}"
    if estimate.get("ci_low") is not None:
        text += f" (95% CI {estimate['ci_low']:.3f}–{estimate['ci_high']:.3f})"
    return text


_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def markdown_text(value: object) -> str:
    """User-supplied text as inert Markdown: HTML escaped (no tag or script survives) and every
    Markdown mark backslash-escaped, on one line (a newline could start a heading or a list)."""
    text = html.escape(" ".join(str(value).split()), quote=False)
    return _MARKDOWN_SPECIALS.sub(r"\\\1", text)


def dataset_card(version: GoldenSetVersion) -> str:
    """A Markdown dataset card: what the version is, how it was made, how reliable it is. Every
    user-supplied string (names, description, vendors, labels) goes through ``markdown_text``."""
    stats = version.stats or {}
    policy_version = version.policy_version
    md = markdown_text
    lines = [
        f"# {md(version.golden_set.name)} v{version.number}",
        "",
        md(version.golden_set.description or ""),
        "",
        "## What it is",
        f"- Policy: {md(policy_version)} (content sha256 `{policy_version.content_sha256[:16]}…`)",
        f"- Items: {version.item_count}; digest `{version.digest}`",
        f"- Frozen {version.frozen_at:%Y-%m-%d %H:%M} UTC by "
        f"{md(version.frozen_by.get_username()) if version.frozen_by else 'a task'}"
        + (f"; parent v{version.parent.number}" if version.parent else ""),
        f"- Freeze rule: {json.dumps(version.freeze_rule)}",
        "",
        "## Gold labels",
        "| label | items |",
        "| --- | ---: |",
        *[f"| {md(label)} | {count} |" for label, count in version.label_distribution.items()],
        "",
        "Left out: " + (", ".join(f"{md(k)} {v}" for k, v in version.excluded.items()) or "nothing"),
        "",
        "## Agreement among human labelers",
        f"- Units with two or more labels: {stats.get('pairable_units', 0)}",
        f"- Percent agreement: {_fmt_estimate(stats.get('percent_agreement'))}",
        f"- Fleiss' κ: {_fmt_estimate(stats.get('fleiss_kappa'))}",
        f"- Krippendorff's α (nominal): {_fmt_estimate(stats.get('krippendorff_alpha'))}",
        f"- Gwet's AC1: {_fmt_estimate(stats.get('gwet_ac1'))}",
        "- CIs: percentile bootstrap over units, "
        f"{stats.get('bootstrap', {}).get('resamples', '?')} resamples.",
        "",
        "## Labeler pool",
        f"- {len(stats.get('labelers', []))} labelers at {len(stats.get('vendors', []))} vendors; "
        "labeler ids in exports are pseudonyms unless raw ids were requested.",
        *[f"- {md(row['vendor'])}: {row['items']} labels, accuracy against gold {row['accuracy']:.3f}"
          for row in stats.get("vendors", [])],
        "",
        "## Known limitations",
        "- Gold is decided by the freeze rule from the labels present at freeze time; labelers' accuracy is "
        "measured against a gold they helped decide, which flatters it.",
        "- Items without a qualifying gold label are left out (see above), which can bias the label "
        "distribution towards easy items.",
        "- Items entered through a sample carry inclusion probabilities in the content metadata only when "
        "imported with them; weight estimates accordingly.",
        "- In the CSV export, a text cell that begins with =, +, -, @, a tab or a carriage return is prefixed "
        "with ' so that spreadsheets show it as text instead of running it as a formula (OWASP's advice on CSV "
        "injection); JSONL and Parquet carry every text unchanged.",
    ]
    # Only a rule that takes LLM-only items can have any (the scan costs a tenth of an export).
    if version.freeze_rule.get("include_llm_only") and GoldenItem.objects.filter(
            version=version, decided_by=DecidedBy.LLM_AUTO_ACCEPTED).exists():
        lines.append("- Some items were auto-accepted by LLM voters without a human label "
                     "(decided_by = llm_auto_accepted).")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ExportResult:
    path: Path
    manifest_path: Path
    card_path: Path
    items: int
    file_sha256: str


def goldset_version_export(*, version: GoldenSetVersion, fmt: str, output: Path, raw_ids: bool = False,
                           into_directory: bool | None = None,
                           on_progress: Callable[[int], None] | None = None) -> ExportResult:
    """Verify the digest, then write the export, ``manifest.json`` and ``DATASET_CARD.md``.

    ``output`` is a directory (``into_directory``, or an existing directory when None: files
    named after the set and version, ``manifest.json``, ``DATASET_CARD.md``) or a file path
    (the manifest and card go next to it as ``<name>.manifest.json`` and ``<name>.card.md``).
    The digest is recomputed while writing; files appear only complete and verified: each is
    written to a temporary file and renamed, or discarded on a mismatch.
    """
    if fmt not in FORMATS:
        raise ApplicationError(f"format: must be one of {', '.join(FORMATS)}, not {fmt!r}")
    _require_frozen(version)
    if into_directory or (into_directory is None and output.is_dir()):
        output.mkdir(parents=True, exist_ok=True)
        path = output / f"{version.golden_set.name}-v{version.number}.{fmt}"
        manifest_path, card_path = output / "manifest.json", output / "DATASET_CARD.md"
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        path = output
        manifest_path = output.with_name(output.name + ".manifest.json")
        card_path = output.with_name(output.name + ".card.md")

    # Versions frozen before heads were digested (no heads_sha256), CSV (built from the
    # columns) and raw ids (not the heads) recompute the canonical digest instead.
    digest: Digest | HeadsDigest = (HeadsDigest() if version.heads_sha256 and fmt != "csv" and not raw_ids
                                    else Digest())
    file_hash = hashlib.sha256()
    with _atomic_file(path) as handle:
        if fmt == "parquet":
            write_parquet(version, handle, raw_ids=raw_ids, digest=digest, on_item=on_progress)
        else:
            chunks = (partial(jsonl_chunks, lines=FILE_CHUNK_LINES) if fmt == "jsonl" else csv_chunks)(
                version, raw_ids=raw_ids, digest=digest, on_item=on_progress)

            def write(chunk: bytes) -> None:
                handle.write(chunk)
                file_hash.update(chunk)

            # Writing and hashing release the GIL, so chunk n goes to disk while Python builds
            # chunk n+1; chunks are large so that the two threads hand over the GIL rarely.
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-write") as pool:
                pending: Future | None = None
                for chunk in chunks:
                    if pending is not None:
                        pending.result()
                    pending = pool.submit(write, chunk)
                if pending is not None:
                    pending.result()
        _check(version, digest)  # raising here discards the temporary file: no export appears
    if on_progress:
        on_progress(version.item_count)
    if fmt == "parquet":  # written by pyarrow: hash the file once it is complete
        with path.open("rb") as written:
            for block in iter(lambda: written.read(1 << 20), b""):
                file_hash.update(block)
    with _atomic_file(manifest_path) as handle:
        document = manifest(version, fmt=fmt, raw_ids=raw_ids, file_name=path.name, file_sha256=file_hash.hexdigest())
        handle.write((json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode())
    with _atomic_file(card_path) as handle:
        handle.write(dataset_card(version).encode())
    return ExportResult(path, manifest_path, card_path, version.item_count, file_hash.hexdigest())


def _umask() -> int:
    """The process umask, read without changing it where the system says (Linux), since
    os.umask() can only be read by setting it, which races with other threads."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class _atomic_file:  # noqa: N801 - used as a context manager, like open()
    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> Any:
        fd, self.tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; an export gets the mode open() would give
        self.handle = os.fdopen(fd, "wb")
        return self.handle

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        self.handle.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            os.unlink(self.tmp)
