"""Celery tasks for golden sets (``freeze`` queue). Payloads are ids only."""

from __future__ import annotations

from celery import shared_task

from goldsets.services import goldset_version_build


@shared_task(acks_late=True, reject_on_worker_lost=True)
def freeze_golden_set_version(version_id: int) -> dict[str, object]:
    """Freeze one building version. A redelivery after a crash builds it again from scratch
    (the crashed attempt's transaction left nothing); a frozen version is returned as is."""
    version = goldset_version_build(version_id=version_id)
    return {"number": version.number, "items": version.item_count, "digest": version.digest}
