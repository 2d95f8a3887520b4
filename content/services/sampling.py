"""Draw samples of content items and store them with their inclusion probabilities."""

from __future__ import annotations

from typing import Any

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from content import sampling
from content.models import ContentItem, ContentItemStatus, Sample, SampleMember, SampleMethod
from touchstone.audit import audit_event_record
from touchstone.errors import ApplicationError
from touchstone.roles import permission_require

MISSING_STRATUM = "(missing)"


class SamplingFailed(ApplicationError):
    code = "sampling_error"


def _frame(frame_filter: dict[str, Any]):
    items = ContentItem.objects.filter(status=ContentItemStatus.READY).order_by("id")
    if frame_filter.get("source"):
        items = items.filter(source=frame_filter["source"])
    for key, value in (frame_filter.get("metadata") or {}).items():
        items = items.filter(**{f"metadata__{key}": value})
    return items


@transaction.atomic(durable=True)
def sample_create(*, name: str, method: str, size: int, seed: int, source: str | None = None,
                  metadata_filter: dict[str, Any] | None = None, stratify_by: str | None = None,
                  allocation: str = "proportional", score_signal: str | None = None, floor: float = 0.01,
                  acting_user: AbstractBaseUser | None) -> Sample:
    """Draw and store a sample. The frame is the ready items of ``source`` (and metadata
    filter), ordered by id, so the same parameters and seed give the same sample.

    Raises PermissionDenied without ``content.add_sample`` (as ``sample draw``), and
    SamplingFailed naming the parameter at fault.
    """
    permission_require(acting_user, "content.add_sample", to="draw a sample")
    if Sample.objects.filter(name=name).exists():
        raise SamplingFailed(f"a sample named {name!r} exists already: samples are never redrawn")
    if method not in SampleMethod.values:
        raise SamplingFailed(f"method {method!r}: use one of {', '.join(SampleMethod.values)}")
    frame_filter = {"source": source or "", "metadata": metadata_filter or {}}
    fields = ["id", "metadata", "scores"]
    rows = list(_frame(frame_filter).values_list(*fields))
    ids = np.array([row[0] for row in rows], dtype=np.int64)
    parameters: dict[str, Any] = {}
    stratum_of: list[str] = [""] * len(rows)

    def score_values(signal: str) -> list[float]:
        missing = [row[0] for row in rows if signal not in (row[2] or {})]
        if missing:
            raise SamplingFailed(f"score signal {signal!r} is missing on {len(missing)} frame items "
                                 f"(first: item id {missing[0]})")
        return [float(row[2][signal]) for row in rows]

    try:
        if method == SampleMethod.UNIFORM:
            draw = sampling.uniform(len(rows), size, seed)
        elif method == SampleMethod.STRATIFIED:
            if not stratify_by:
                raise SamplingFailed("stratified sampling needs --stratify-by METADATA_KEY")
            stratum_of = [str((row[1] or {}).get(stratify_by, MISSING_STRATUM)) for row in rows]
            aux = score_values(score_signal) if allocation == "neyman" and score_signal else None
            draw = sampling.stratified(stratum_of, size, seed, allocation, aux)
            parameters = {"stratify_by": stratify_by, "allocation": allocation, "score_signal": score_signal}
        else:
            if not score_signal:
                raise SamplingFailed("score-weighted sampling needs --score-signal NAME")
            draw = sampling.score_weighted(score_values(score_signal), size, seed, floor)
            parameters = {"score_signal": score_signal, "floor": floor}
    except sampling.SamplingError as exc:
        raise SamplingFailed(str(exc)) from exc

    sample = Sample.objects.create(
        name=name, method=method, parameters=parameters, seed=seed, frame_filter=frame_filter,
        frame_size=len(rows), requested_size=size, size=len(draw.indices), expected_size=float(size),
        strata=draw.strata, created_by=acting_user)
    SampleMember.objects.bulk_create(
        (SampleMember(sample=sample, item_id=int(ids[index]), stratum=stratum_of[index], inclusion_probability=float(p))
         for index, p in zip(draw.indices, draw.probabilities, strict=True)), batch_size=1000)
    audit_event_record(actor=acting_user, event_type="sample.created", obj=sample,
                       details={"method": method, "size": sample.size, "frame_size": sample.frame_size,
                                "seed": seed, **parameters})
    return sample
