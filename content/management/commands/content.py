"""``python manage.py content import PATH --source NAME [--strict] [--json]``."""

from __future__ import annotations

import json as _json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from content.models import ContentImport
from content.services.content import content_import
from touchstone.cli import acting_user, add_user_argument, application_errors_as_command_errors
from touchstone.lines import LineError
from touchstone.progress import progress_bar


class Command(BaseCommand):
    help = "Import content items from JSONL (or CSV for text-only items)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        p = sub.add_parser("import", help="import a JSONL or CSV file")
        p.add_argument("path", type=Path)
        p.add_argument("--source", required=True, help="where the content comes from (dedupe key)")
        p.add_argument("--strict", action="store_true", help="roll back the whole import on the first bad line")
        p.add_argument("--batch-size", type=int, default=1000)
        p.add_argument("--json", action="store_true",
                       help="print the import job as one JSON document (bad lines still go to stderr)")
        add_user_argument(p)

    @application_errors_as_command_errors
    def handle(self, *args: Any, path: Path, source: str, strict: bool, batch_size: int, user: str | None,
               json: bool = False, **options: Any) -> None:
        actor = acting_user(user)
        if not path.is_file():
            raise CommandError(f"{path}: no such file")

        def report(error: LineError) -> None:
            self.stderr.write(str(error))

        with progress_bar(total=path.stat().st_size, unit="B", unit_scale=True, desc=f"import {path.name}") as bar:
            job = content_import(path=path, source=source, strict=strict, acting_user=actor, batch_size=batch_size,
                                 on_progress=lambda done: bar.update(done - bar.n), on_error=report)
        if json:
            self.stdout.write(_json.dumps(_import_document(job), indent=2, ensure_ascii=False))
            return
        self.stdout.write(f"{path}: imported {job.imported}, duplicate {job.duplicates}, rejected {job.rejected}, "
                          f"identical body under another id {job.identical_bodies}, "
                          f"items with a failed image {job.failed_images} (import #{job.pk})")


def _import_document(job: ContentImport) -> dict[str, Any]:
    """The content import job as ``--json`` prints it: its counters and the first rejected lines
    (``{"line", "field", "reason"}``, as the job stored them)."""
    return {"import": job.pk, "source": job.source, "path": job.path, "strict": job.strict, "status": job.status,
            "lines_read": job.lines_read, "imported": job.imported, "duplicates": job.duplicates,
            "rejected": job.rejected, "identical_bodies": job.identical_bodies, "failed_images": job.failed_images,
            "errors": job.errors, "started_at": job.started_at.isoformat() if job.started_at else None,
            "finished_at": job.finished_at.isoformat() if job.finished_at else None}
