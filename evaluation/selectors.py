"""Reads of signals, their versions, scores and score imports."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet

from evaluation.models import Signal, SignalScore, SignalScoreImport, SignalVersion
from touchstone.errors import NotFound


def signal_list() -> QuerySet[Signal]:
    """Every signal with its policy, owner and number of versions (one query)."""
    return (Signal.objects.select_related("policy", "owner")
            .annotate(version_count=Count("versions", distinct=True)).order_by("name"))


def signal_get(*, name: str) -> Signal:
    signal = Signal.objects.select_related("policy", "owner", "created_by").filter(name=name).first()
    if signal is None:
        raise NotFound(f"No signal {name!r}.")
    return signal


def signal_version_list(*, signal: Signal) -> QuerySet[SignalVersion]:
    """The versions of ``signal``, newest first, each with ``score_count`` (one query)."""
    return (SignalVersion.objects.filter(signal=signal)
            .select_related("signal", "policy_version__policy", "labeling_run", "prompt_version", "created_by")
            .annotate(score_count=Count("scores")).order_by("-number"))


def signal_version_get(*, name: str, number: int | None = None) -> SignalVersion:
    """``name@number``, or the newest version when ``number`` is None. Raises NotFound."""
    versions = signal_version_list(signal=signal_get(name=name))
    version = versions.filter(number=number).first() if number is not None else versions.first()
    if version is None:
        raise NotFound(f"No version {number} of signal {name!r}." if number is not None
                       else f"Signal {name!r} has no version yet.")
    return version


def signal_version_get_by_ref(ref: str) -> SignalVersion:
    """Parse ``NAME@V`` (or ``NAME`` for the newest version). Raises NotFound."""
    name, _, number = ref.partition("@")
    if number and not number.isdigit():
        raise NotFound(f"{ref!r}: the version after '@' must be a number.")
    return signal_version_get(name=name, number=int(number) if number else None)


def signal_version_summary(*, version: SignalVersion) -> dict[str, Any]:
    """Counts of a version's scores: rows, rows with a score, rows per label (two queries)."""
    scores = SignalScore.objects.filter(version=version)
    totals = scores.aggregate(rows=Count("id"), scored=Count("id", filter=Q(score__isnull=False)))
    labels = dict(scores.exclude(label="").values_list("label").annotate(n=Count("id")).values_list("label", "n"))
    return {"rows": totals["rows"], "with_score": totals["scored"], "labels": dict(sorted(labels.items()))}


def signal_score_import_list(*, version: SignalVersion, limit: int = 20) -> list[SignalScoreImport]:
    return list(SignalScoreImport.objects.filter(version=version).select_related("started_by")
                .order_by("-started_at", "-pk")[:limit])
