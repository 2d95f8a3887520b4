"""``python manage.py labels import PATH --policy SLUG[@VERSION] [--source NAME] [--strict]``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from policies.selectors import policy_version_for_labels
from review.services.human_labels import human_label_import
from touchstone.cli import acting_user, add_user_argument, application_errors_as_command_errors
from touchstone.lines import LineError
from touchstone.progress import progress_bar


class Command(BaseCommand):
    help = "Import human labels (one per JSONL line, or a golden-set JSONL export)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        p = sub.add_parser("import", help="import a JSONL file of human labels")
        p.add_argument("path", type=Path)
        p.add_argument("--policy", required=True, metavar="SLUG[@VERSION]",
                       help="the policy version whose taxonomy the labels use (default: the published one)")
        p.add_argument("--source", default="", help="the content source the external ids belong to")
        p.add_argument("--strict", action="store_true", help="roll back the whole import on the first bad line")
        p.add_argument("--batch-size", type=int, default=1000)
        add_user_argument(p)

    @application_errors_as_command_errors
    def handle(self, *args: Any, path: Path, policy: str, source: str, strict: bool, batch_size: int,
               user: str | None, **options: Any) -> None:
        actor = acting_user(user)
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        version = policy_version_for_labels(policy)

        def report(error: LineError) -> None:
            self.stderr.write(str(error))

        with progress_bar(total=path.stat().st_size, unit="B", unit_scale=True, desc=f"labels {path.name}") as bar:
            job = human_label_import(path=path, policy_version=version, content_source=source, strict=strict,
                                     acting_user=actor, batch_size=batch_size,
                                     on_progress=lambda done: bar.update(done - bar.n), on_error=report)
        self.stdout.write(f"{path}: imported {job.imported}, duplicate {job.duplicates}, rejected {job.rejected} "
                          f"for {version} (label import #{job.pk})")
