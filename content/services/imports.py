"""The shared driver of the import commands (content, labels): batches, strict roll-back,
the job's final state and its audit event."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from content.contentfile import batched
from content.models import ImportJob
from touchstone.audit import audit_event_record
from touchstone.errors import LocatedError


def import_job_run(job: ImportJob, *, path: Path, handle: IO[Any], records: Iterable[Any], strict: bool,
                   batch_size: int, process: Callable[[list[Any]], None], save_counters: Callable[[], None],
                   event_type: str, acting_user: AbstractBaseUser | None) -> ImportJob:
    """Feed ``records`` to ``process`` in batches (each commits on its own; with ``strict``, all
    in one transaction that a LocatedError rolls back), then mark the job finished or failed.
    A file that is not UTF-8 becomes a LocatedError naming it."""
    model = type(job)
    try:
        with handle:
            if strict:
                with transaction.atomic():
                    for batch in batched(records, batch_size):
                        process(batch)
                    save_counters()
            else:
                for batch in batched(records, batch_size):
                    process(batch)
    except (LocatedError, UnicodeDecodeError) as exc:
        reason = exc.message if isinstance(exc, LocatedError) else f"{path}: not UTF-8 text: {exc}"
        model.objects.filter(pk=job.pk).update(status=ImportJob.Status.FAILED, finished_at=timezone.now(),
                                               errors=[{"reason": reason}])
        if isinstance(exc, UnicodeDecodeError):
            raise LocatedError(f"not UTF-8 text: {exc.reason}", path=str(path)) from exc
        raise
    model.objects.filter(pk=job.pk).update(status=ImportJob.Status.FINISHED, finished_at=timezone.now())
    job.refresh_from_db()
    with transaction.atomic():
        audit_event_record(actor=acting_user, event_type=event_type, obj=job,
                           details={"imported": job.imported, "duplicates": job.duplicates, "rejected": job.rejected})
    return job
