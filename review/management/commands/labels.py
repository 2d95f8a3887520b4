"""``python manage.py labels import PATH --policy SLUG[@VERSION] [--source NAME] [--strict] [--json]`` and
``python manage.py labels quality [--vendor NAME] [--labeler [VENDOR/]ID] [--weeks N] [--json]``."""

from __future__ import annotations

import json as _json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from policies.models import PolicyVersion
from policies.selectors import policy_version_for_labels
from review import selectors
from review.models import LabelImport
from review.services.human_labels import human_label_import
from touchstone.cli import acting_user, add_user_argument, application_errors_as_command_errors
from touchstone.errors import LocatedError
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
        p.add_argument("--json", action="store_true",
                       help="print the import's counters and its first rejected lines as JSON")
        add_user_argument(p)
        p = sub.add_parser("quality", help="labelers over time: weekly accuracy and κ on hidden gold, peer and "
                                           "final-label agreement with 95%% CIs, and drift flags")
        p.add_argument("--vendor", help="this vendor's series and its labelers (by name)")
        p.add_argument("--labeler", metavar="[VENDOR/]ID", help="this labeler's series")
        p.add_argument("--weeks", type=int, default=selectors.DEFAULT_WEEKS,
                       help=f"ISO weeks (UTC) up to this one, 1 to {selectors.MAX_WEEKS} "
                            f"(default {selectors.DEFAULT_WEEKS})")
        p.add_argument("--json", action="store_true", help="print the series as JSON")

    @application_errors_as_command_errors
    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "quality":
            self._quality(**options)
        else:
            self._import(**options)

    def _quality(self, *, vendor: str | None, labeler: str | None, weeks: int, json: bool, **_: Any) -> None:
        try:
            window = selectors.quality_window(weeks=weeks)
        except LocatedError as exc:
            raise CommandError(f"--weeks: {exc.reason}") from exc
        if vendor and labeler:
            raise CommandError("--vendor and --labeler: give one of them, not both")
        if labeler:
            docs = [selectors.labeler_quality_document(selectors.labeler_quality_series(
                labeler=selectors.labeler_by_ref(labeler), window=window))]
        else:
            vendors = [selectors.vendor_by_name(name=vendor)] if vendor else selectors.vendor_list()
            docs = [selectors.vendor_quality_document(selectors.vendor_quality_series(vendor=v, window=window))
                    for v in vendors]
        if json:
            self.stdout.write(_json.dumps(docs[0] if labeler else docs, indent=2, ensure_ascii=False))
            return
        for doc in docs:
            self._print_series(doc)

    def _print_series(self, doc: dict) -> None:
        who = (f"labeler {doc['labeler']['vendor']}/{doc['labeler']['external_id']}" if "labeler" in doc
               else f"vendor {doc['vendor']['name']}")
        self.stdout.write(f"{who}: {doc['window']['weeks']} ISO weeks (UTC) from {doc['window']['first']}; "
                          f"latest gold week {doc['latest_gold_week'] or '—'}"
                          + (" DRIFT" if doc["drift"] else ""))
        self.stdout.write(f"  {'week':<9} {'labels':>6} {'gold':>5} {'accuracy [95% CI]':>19} {'trail':>5} "
                          f"{'kappa':>6} {'pairs':>5} {'peers':>5} {'final':>5}  drift")
        for week in doc["weeks"]:
            a, k, p, f, t = week["accuracy"], week["kappa"], week["peer"], week["final"], week["trailing"]
            accuracy = (f"{a['value']:.2f} [{a['ci_low']:.2f}, {a['ci_high']:.2f}]" if a["n"] else "—")
            self.stdout.write(f"  {week['week']:<9} {week['labels']:>6} {a['n']:>5} {accuracy:>19} "
                              f"{_num(t['value'] if t else None, 5)} {_num(k['value'], 6)} {p['n']:>5} "
                              f"{_num(p['value'], 5)} {_num(f['value'], 5)}  {'DRIFT' if week['drift'] else ''}")
        for row in doc.get("labelers", []):
            ref = row["labeler"]
            self.stdout.write(f"  labeler {ref['external_id']} ({ref['status']}): latest gold week "
                              f"{row['latest_gold_week'] or '—'}" + (" DRIFT" if row["drift"] else ""))
        self.stdout.write(f"  drift rule: {doc['drift_rule']}")

    def _import(self, *, path: Path, policy: str, source: str, strict: bool, batch_size: int, json: bool,
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
        if json:
            self.stdout.write(_json.dumps(_import_document(job, version), indent=2, ensure_ascii=False))
            return
        self.stdout.write(f"{path}: imported {job.imported}, duplicate {job.duplicates}, rejected {job.rejected} "
                          f"for {version} (label import #{job.pk})")


def _import_document(job: LabelImport, version: PolicyVersion) -> dict[str, Any]:
    """The label import job as ``--json`` prints it: its counters and the first rejected lines
    (``{"line", "field", "reason"}``, as the job stored them)."""
    return {"import": job.pk, "policy_version": str(version), "path": job.path, "strict": job.strict,
            "status": job.status, "lines_read": job.lines_read, "imported": job.imported,
            "duplicates": job.duplicates, "rejected": job.rejected, "errors": job.errors}


def _num(value: float | None, width: int) -> str:
    return f"{value:>{width}.2f}" if value is not None else f"{'—':>{width}}"
