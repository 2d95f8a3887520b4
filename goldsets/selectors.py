"""Golden-set reads."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import QuerySet

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
