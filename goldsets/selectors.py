"""Golden-set reads."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.db.models import OuterRef, QuerySet, Subquery

from goldsets.models import GoldenItem, GoldenSet, GoldenSetVersion, GoldenSetVersionStatus
from touchstone.errors import NotFound


def goldset_list() -> QuerySet[GoldenSet]:
    return GoldenSet.objects.select_related("policy").order_by("name")


def goldset_get(*, name: str) -> GoldenSet:
    try:
        return GoldenSet.objects.select_related("policy").get(name=name)
    except GoldenSet.DoesNotExist:
        raise NotFound(f"No golden set {name!r}.") from None


def goldset_version_list(*, golden_set: GoldenSet) -> QuerySet[GoldenSetVersion]:
    return (GoldenSetVersion.objects.filter(golden_set=golden_set, status=GoldenSetVersionStatus.FROZEN)
            .select_related("golden_set", "policy_version__policy", "frozen_by", "parent").order_by("-number"))


def goldset_version_get(*, name: str, number: int | None = None) -> GoldenSetVersion:
    """Version ``number`` of golden set ``name``, or its newest frozen version. Raises NotFound."""
    golden_set = goldset_get(name=name)
    versions = goldset_version_list(golden_set=golden_set)
    version = versions.filter(number=number).first() if number is not None else versions.first()
    if version is None:
        raise NotFound(f"Golden set {name!r} has no frozen version {number}." if number is not None
                       else f"Golden set {name!r} has no frozen version yet.")
    return version


def goldset_version_items(*, version: GoldenSetVersion, gold_label: str | None = None) -> QuerySet[GoldenItem]:
    items = GoldenItem.objects.filter(version=version)
    if gold_label:
        items = items.filter(gold_label=gold_label)
    return items.order_by("position")


@dataclass
class VersionDiff:
    old: GoldenSetVersion
    new: GoldenSetVersion
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[tuple[str, str, str]] = field(default_factory=list)  # item, old gold, new gold
    unchanged: int = 0

    def counts(self) -> dict[str, int]:
        return {"added": len(self.added), "removed": len(self.removed), "gold_label_changed": len(self.changed),
                "unchanged": self.unchanged}


def _gold_by_item(version: GoldenSetVersion) -> dict[str, str]:
    rows = (GoldenItem.objects.filter(version=version).order_by("position")
            .values_list("source", "external_id", "gold_label").iterator(chunk_size=10_000))
    return {f"{source}:{external_id}": gold for source, external_id, gold in rows}


def goldset_version_diff(*, old: GoldenSetVersion, new: GoldenSetVersion) -> VersionDiff:
    """Items added, removed and with a changed gold label from ``old`` to ``new``."""
    before, after = _gold_by_item(old), _gold_by_item(new)
    diff = VersionDiff(old=old, new=new)
    for key, gold in after.items():
        if key not in before:
            diff.added.append(key)
        elif before[key] != gold:
            diff.changed.append((key, before[key], gold))
        else:
            diff.unchanged += 1
    diff.removed = [key for key in before if key not in after]
    return diff


def _estimate(value: dict | None) -> dict | None:
    if not value or value.get("value") is None:
        return None if not value else {"value": None, "ci_low": None, "ci_high": None, "reason": value.get("reason")}
    return {"value": value["value"], "ci_low": value.get("ci_low"), "ci_high": value.get("ci_high")}


def goldset_version_stats_document(version: GoldenSetVersion) -> dict[str, Any]:
    """The stored statistics in the shape the CLI's --json and the API return."""
    stats = version.stats
    return {
        "golden_set": version.golden_set.name, "version": version.number, "digest": version.digest,
        "items": version.item_count, "labels": version.label_distribution, "excluded": version.excluded,
        "percent_agreement": (stats.get("percent_agreement") or {}).get("value"),
        "fleiss_kappa": _estimate(stats.get("fleiss_kappa")),
        "gwet_ac1": _estimate(stats.get("gwet_ac1")),
        "krippendorff_alpha": _estimate(stats.get("krippendorff_alpha")),
        "krippendorff_alpha_ordinal": _estimate(stats.get("krippendorff_alpha_ordinal")),
        "pairable_units": stats.get("pairable_units"),
        "per_label_alpha": {k: _estimate(v) for k, v in stats.get("per_label_alpha", {}).items()},
        "pairwise_cohen_kappa": [{"a": r["a"], "b": r["b"], "shared": r["shared"], "kappa": _estimate(r["kappa"])}
                                 for r in stats.get("pairwise_cohen_kappa", [])],
        "labelers": [{**r, "kappa": _estimate(r["kappa"])} for r in stats.get("labelers", [])],
        "vendors": [{**r, "kappa": _estimate(r["kappa"])} for r in stats.get("vendors", [])],
        "llm_voters": [{**r, "kappa": _estimate(r["kappa"])} for r in stats.get("llm_voters", [])],
        "bootstrap": stats.get("bootstrap"),
    }


@dataclass(frozen=True)
class LatestVersion:
    """A golden set's newest frozen version and its Krippendorff's α (value, ci_low, ci_high, or a
    reason when undefined), for the home page."""

    version: GoldenSetVersion
    alpha: dict | None


def goldset_latest_version_list() -> list[LatestVersion]:
    """The newest frozen version of every golden set that has one, by golden-set name (two queries)."""
    newest = (GoldenSetVersion.objects.filter(golden_set=OuterRef("pk"), status=GoldenSetVersionStatus.FROZEN)
              .order_by("-number").values("pk")[:1])
    ids = GoldenSet.objects.annotate(newest=Subquery(newest)).exclude(newest=None).values_list("newest", flat=True)
    versions = (GoldenSetVersion.objects.filter(pk__in=list(ids))
                .select_related("golden_set", "policy_version__policy").order_by("golden_set__name"))
    return [LatestVersion(version=v, alpha=_estimate(v.stats.get("krippendorff_alpha"))) for v in versions]


def goldset_freezes_building(*, golden_set: GoldenSet) -> QuerySet[GoldenSetVersion]:
    """Freeze requests of ``golden_set`` still building, oldest first (a stale one lost its process)."""
    return (GoldenSetVersion.objects.filter(golden_set=golden_set, status=GoldenSetVersionStatus.BUILDING)
            .select_related("created_by").order_by("created_at"))


class GoldRow(NamedTuple):
    """One frozen gold item as an evaluation reads it."""

    item_id: int
    source: str
    external_id: str
    gold_label: str
    metadata: dict
    rule_ids: tuple[str, ...]  # the union of the human labels' ``rule_ids``, when the frozen labels carry them
    labels: list | None  # the frozen human labels (only with ``details``)
    llm: dict | None  # the LLM run's decision and votes (only with ``details``)


def goldset_version_gold_rows(*, version: GoldenSetVersion, item_ids: Iterable[int] | None = None,
                              details: bool = False) -> Iterator[GoldRow]:
    """The gold items of ``version`` in position order, streamed in chunks (bounded memory).
    ``item_ids`` narrows them; ``details`` adds the human labels and the LLM decision (for the
    few examples an evaluation shows)."""
    items = GoldenItem.objects.filter(version=version)
    if item_ids is not None:
        items = items.filter(item_id__in=list(item_ids))
    columns = ["item_id", "source", "external_id", "gold_label", "metadata", "labels", *(["llm"] if details else [])]
    for row in items.order_by("position").values_list(*columns).iterator(chunk_size=5_000):
        labels = row[5] or []
        rule_ids = tuple(sorted({str(rule) for label in labels if isinstance(label, dict)
                                 for rule in (label.get("rule_ids") or [])}))
        yield GoldRow(row[0], row[1], row[2], row[3], row[4] or {}, rule_ids, labels if details else None,
                      row[6] if details else None)
