"""Celery tasks for golden sets (``freeze`` queue). Payloads are ids only."""

from __future__ import annotations

import logging

from celery import shared_task

from goldsets.services import goldset_freeze_watchdog, goldset_version_build

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def freeze_golden_set_version(self, version_id: int) -> dict[str, object]:
    """Freeze one building version. A redelivery after a crash builds it again from scratch
    (the crashed attempt's transaction left nothing); a frozen version is returned as is.
    Progress (items written so far) is published as the task's PROGRESS state."""

    def progress(done: int, total: int) -> None:
        if self.request.is_eager or not self.request.id:
            return
        try:
            self.update_state(state="PROGRESS", meta={"done": done, "total": total})
        except Exception:  # progress is a courtesy: an unreachable result backend must not fail a freeze
            logger.warning("freeze #%s: could not publish progress", version_id, exc_info=True)

    version = goldset_version_build(version_id=version_id, on_progress=progress)
    return {"number": version.number, "items": version.item_count, "digest": version.digest}


@shared_task(acks_late=True)
def freeze_watchdog(stale_after_seconds: float = 3600) -> list[int]:
    return goldset_freeze_watchdog(stale_after_seconds=stale_after_seconds)
