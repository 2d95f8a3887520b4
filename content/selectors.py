"""Reads of content for the apps above: item keys and their stored parts, in bulk."""

from __future__ import annotations

from typing import NamedTuple

from content.models import ContentItem
from touchstone.db import json_text, raw_rows

ID_CHUNK = 5_000  # ids per IN (...): well under SQLite's 32,766 variables


class ItemKey(NamedTuple):
    source: str
    external_id: str
    item_id: int


class ItemSnapshot(NamedTuple):
    """An item's stored parts and metadata as JSON text (as stored, for byte-exact copies)."""

    parts_json: str | None
    metadata_json: str | None
    content_sha256: str


def content_item_keys(*, item_ids: list[int]) -> list[ItemKey]:
    """(source, external id, id) of these items, in no particular order."""
    keys: list[ItemKey] = []
    for start in range(0, len(item_ids), ID_CHUNK):
        keys += [ItemKey(source, external_id, pk) for pk, source, external_id in ContentItem.objects.filter(
            pk__in=item_ids[start:start + ID_CHUNK]).values_list("pk", "source", "external_id")]
    return keys


def content_item_snapshots(*, item_ids: list[int]) -> dict[int, ItemSnapshot]:
    """Parts, metadata and digest of at most ID_CHUNK items by id. A raw read: the ORM would
    decode and re-encode every JSON document, which costs more than a freeze's own work."""
    if len(item_ids) > ID_CHUNK:
        raise ValueError(f"at most {ID_CHUNK} items at once")
    if not item_ids:
        return {}
    sql = (f"SELECT id, parts, metadata, content_sha256 FROM {ContentItem._meta.db_table} "
           f"WHERE id IN ({', '.join(['%s'] * len(item_ids))})")
    return {pk: ItemSnapshot(json_text(parts), json_text(metadata), sha)
            for pk, parts, metadata, sha in raw_rows(sql, item_ids)}
