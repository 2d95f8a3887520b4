"""Pure parts of freezing: the freeze rule, gold decisions, the digest, pseudonyms.

Digest (documented contract; exports recompute it)
-------------------------------------------------
A version's digest is the sha256 of the concatenation, in item order (``source``, then
``external_id``, compared as Python strings), of one canonical line per item::

    json.dumps({"source", "external_id", "content_sha256", "gold_label", "decided_by",
                "labels": sorted([vendor, role, label] for every human label)},
               sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\\n"

encoded as UTF-8. Labeler identities are not part of it, so a pseudonymized export imported
back and frozen with the same rule has the same digest. A frozen item stores its labels in
that sorted order; exports hash them in stored order, so reordering them is detected too.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import orjson

RULES = ("majority", "unanimous", "plurality")


@dataclass(frozen=True)
class FreezeRule:
    """Which items enter a version and how their gold label is decided.

    - ``min_labels``: valid review labels an item needs (an adjudicated item always qualifies);
    - ``rule``: ``majority`` (more than half), ``unanimous``, or ``plurality`` (a single most
      frequent label);
    - ``include_llm_only``: also take items an LLM run auto-accepted and no human labelled,
      marked ``llm_auto_accepted``.
    """

    min_labels: int = 3
    rule: str = "majority"
    include_llm_only: bool = False

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"rule: must be one of {', '.join(RULES)}, not {self.rule!r}")
        if self.min_labels < 1:
            raise ValueError("min_labels: must be at least 1")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GoldDecision:
    gold_label: str | None
    decided_by: str | None = None  # unanimous | majority | adjudicated | llm_auto_accepted
    excluded_because: str | None = None


def decide_gold(review_labels: Sequence[str], adjudicated: str | None, rule: FreezeRule) -> GoldDecision:
    """Gold for one item from its valid review labels and the final adjudicated label, if any."""
    if adjudicated is not None:
        return GoldDecision(adjudicated, "adjudicated")
    if len(review_labels) < rule.min_labels:
        return GoldDecision(None, excluded_because="fewer_labels")
    first = review_labels[0]
    if all(label == first for label in review_labels):
        return GoldDecision(first, "unanimous")
    counts = Counter(review_labels).most_common()
    top_label, top = counts[0]
    if len(counts) == 1:
        return GoldDecision(top_label, "unanimous")
    if rule.rule == "unanimous":
        return GoldDecision(None, excluded_because="not_unanimous")
    if rule.rule == "majority":
        if 2 * top > len(review_labels):
            return GoldDecision(top_label, "majority")
        return GoldDecision(None, excluded_because="no_majority")
    if top > counts[1][1]:
        return GoldDecision(top_label, "majority")
    return GoldDecision(None, excluded_because="tie")


def canonical_line(*, source: str, external_id: str, content_sha256: str, gold_label: str, decided_by: str,
                   labels: Iterable[tuple[str, str, str]]) -> bytes:
    """One item's digest line; ``labels`` are (vendor, role, label) triples."""
    # Keys already in sorted order; orjson then writes exactly the json.dumps form documented above.
    record = {
        "content_sha256": content_sha256, "decided_by": decided_by, "external_id": external_id,
        "gold_label": gold_label, "labels": sorted(list(label) for label in labels), "source": source,
    }
    return orjson.dumps(record) + b"\n"


def item_order_key(source: str, external_id: str) -> tuple[str, str]:
    return (source, external_id)


class Digest:
    """Incremental digest over canonical lines, fed in item order."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.items = 0

    def add(self, line: bytes) -> None:
        self._hash.update(line)
        self.items += 1

    def add_many(self, lines: list[bytes]) -> None:
        """The same as ``add`` for each line in turn (sha256 of a concatenation), in one call."""
        self._hash.update(b"".join(lines))
        self.items += len(lines)

    def add_heads(self, heads: list[bytes]) -> None:
        """Add the canonical lines of items given as their export heads (see ``canonical_lines_from_heads``)."""
        self.add_many(canonical_lines_from_heads(heads))

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def expected(self, version: Any) -> str:
        return version.digest


def canonical_lines_from_heads(heads: list[bytes]) -> list[bytes]:
    """The canonical lines of items given as their stored export heads (the line without its
    closing brace), built as ``canonical_line`` builds them (the tests hold the two together;
    stored labels are already in its order). The heads are decoded in one call, as one JSON
    array: per-item calls cost a third more."""
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    return [dumps({
        "content_sha256": item["content_sha256"], "decided_by": item["decided_by"],
        "external_id": item["external_id"], "gold_label": item["gold_label"],
        "labels": [(label["vendor"], label["role"], label["label"]) for label in item["labels"]],
        "source": item["source"]}, option=newline) for item in orjson.loads(b"[" + b"},".join(heads) + b"}]")]


class HeadsDigest:
    """sha256 over each item's export head and a newline, in item order: the bytes a
    pseudonymized JSONL or Parquet export writes first on each line. The freeze records it
    beside the canonical digest, from the same heads in the same transaction, so an export
    checks what it writes against it by hashing bytes (no decoding); ``goldset verify`` still
    recomputes the canonical digest from the items' columns and from the heads."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.items = 0

    def add_heads(self, heads: list[bytes]) -> None:
        self._hash.update(b"\n".join(heads) + b"\n")
        self.items += len(heads)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def expected(self, version: Any) -> str:
        return version.heads_sha256 or ""


def pseudonym(key: str, vendor: str, labeler: str) -> str:
    """A labeler's stable pseudonym within one golden set (HMAC-SHA256 under the set's key)."""
    mac = hmac.new(key.encode(), f"{vendor}\x1f{labeler}".encode(), hashlib.sha256).hexdigest()
    return f"L-{mac[:12]}"
