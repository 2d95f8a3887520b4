"""``python manage.py content import PATH --source NAME [--strict]``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

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
        add_user_argument(p)

    @application_errors_as_command_errors
    def handle(self, *args: Any, path: Path, source: str, strict: bool, batch_size: int, user: str | None,
               **options: Any) -> None:
        actor = acting_user(user)
        if not path.is_file():
            raise CommandError(f"{path}: no such file")

        def report(error: LineError) -> None:
            self.stderr.write(str(error))

        with progress_bar(total=path.stat().st_size, unit="B", unit_scale=True, desc=f"import {path.name}") as bar:
            job = content_import(path=path, source=source, strict=strict, acting_user=actor, batch_size=batch_size,
                                 on_progress=lambda done: bar.update(done - bar.n), on_error=report)
        self.stdout.write(f"{path}: imported {job.imported}, duplicate {job.duplicates}, rejected {job.rejected}, "
                          f"identical body under another id {job.identical_bodies}, "
                          f"items with a failed image {job.failed_images} (import #{job.pk})")
