"""``python manage.py signal create|version|import|import-run|list|show``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evaluation.models import SignalKind, SignalOutputType, SignalScoreImport, SignalVersion
from evaluation.scorefile import FORMATS
from evaluation.selectors import (
    signal_get,
    signal_list,
    signal_version_get,
    signal_version_get_by_ref,
    signal_version_list,
    signal_version_summary,
)
from evaluation.services import (
    signal_create,
    signal_scores_import,
    signal_version_create,
    signal_version_from_run,
)
from policies.selectors import policy_version_get
from runs.selectors import labeling_run_get
from touchstone.cli import acting_user, add_user_argument, application_errors_as_command_errors
from touchstone.lines import LineError
from touchstone.progress import progress_bar

UNKNOWN_SHOWN = 20


def _version_document(version: SignalVersion) -> dict[str, Any]:
    return {"signal": version.signal.name, "version": version.number, "policy_version": str(version.policy_version),
            "notes": version.notes, "model_card_url": version.model_card_url, "commit": version.commit,
            "labeling_run": version.labeling_run.name if version.labeling_run else None,
            "prompt_version": version.prompt_version.sha256 if version.prompt_version else None,
            "created_by": version.created_by.get_username() if version.created_by else None,
            "created_at": version.created_at.isoformat(), **signal_version_summary(version=version)}


def _import_document(job: SignalScoreImport, version: SignalVersion) -> dict[str, Any]:
    return {"import": job.pk, "signal": f"{version.signal.name}@{version.number}", "path": job.path,
            "status": job.status, "lines_read": job.lines_read, "imported": job.imported,
            "duplicates": job.duplicates, "rejected": job.rejected, "unknown": job.unknown,
            "unknown_items": job.unknown_items}


class Command(BaseCommand):
    help = "Register signals and their versions, import their scores, list and show them."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        p = sub.add_parser("create", help="register a signal (its name, kind, policy and output never change)")
        p.add_argument("name")
        p.add_argument("--policy", required=True, metavar="SLUG")
        p.add_argument("--kind", required=True, choices=SignalKind.values)
        p.add_argument("--output", required=True, choices=SignalOutputType.values)
        p.add_argument("--score-label", default="", help="score signals: 'violating' or a label key")
        p.add_argument("--description", default="")
        p.add_argument("--json", action="store_true")
        add_user_argument(p)
        p = sub.add_parser("version", help="add the next version of a signal")
        p.add_argument("name")
        p.add_argument("--notes", default="")
        p.add_argument("--model-card", default="", metavar="URL")
        p.add_argument("--commit", default="")
        p.add_argument("--policy-version", type=int, help="the taxonomy's policy version (default: published)")
        p.add_argument("--json", action="store_true")
        add_user_argument(p)
        p = sub.add_parser("import", help="import scores from JSONL, CSV or Parquet")
        p.add_argument("path", type=Path)
        p.add_argument("--signal", required=True, metavar="NAME@V")
        p.add_argument("--format", choices=FORMATS, help="default: from the file's suffix")
        p.add_argument("--strict", action="store_true", help="roll the whole import back on the first bad row")
        p.add_argument("--json", action="store_true")
        add_user_argument(p)
        p = sub.add_parser("import-run", help="make (or complete) the signal version of a finished labeling run")
        p.add_argument("run", help="the run's name or id")
        p.add_argument("--signal", help="default: llm-POLICY")
        p.add_argument("--json", action="store_true")
        add_user_argument(p)
        p = sub.add_parser("list", help="signals and their versions")
        p.add_argument("--json", action="store_true")
        p = sub.add_parser("show", help="a signal, or one version (NAME@V) with its score counts")
        p.add_argument("ref", metavar="NAME[@V]")
        p.add_argument("--json", action="store_true")

    @application_errors_as_command_errors
    def handle(self, *args: Any, action: str, **options: Any) -> None:
        getattr(self, f"_{action.replace('-', '_')}")(**options)

    def _emit(self, document: Any, as_json: bool, text: str) -> None:
        self.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) if as_json else text)

    def _create(self, *, name: str, policy: str, kind: str, output: str, score_label: str, description: str,
                json: bool, user: str | None, **_: Any) -> None:
        signal = signal_create(name=name, kind=kind, policy=policy_version_get(slug=policy).policy, output_type=output,
                               score_label=score_label, description=description, acting_user=acting_user(user))
        self._emit({"signal": signal.name, "kind": signal.kind, "policy": policy, "output_type": signal.output_type,
                    "score_label": signal.score_label}, json, f"created signal {signal.name}")

    def _version(self, *, name: str, notes: str, model_card: str, commit: str, policy_version: int | None,
                 json: bool, user: str | None, **_: Any) -> None:
        actor = acting_user(user)
        signal = signal_get(name=name)
        taxonomy_version = (policy_version_get(slug=signal.policy.slug, number=policy_version)
                            if policy_version is not None else None)
        version = signal_version_create(signal=signal, notes=notes, model_card_url=model_card, commit=commit,
                                        policy_version=taxonomy_version, acting_user=actor)
        version = signal_version_get(name=name, number=version.number)
        self._emit(_version_document(version), json, f"created {version} (labels of {version.policy_version})")

    def _import(self, *, path: Path, signal: str, format: str | None, strict: bool, json: bool, user: str | None,
                **_: Any) -> None:
        actor = acting_user(user)
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        if "@" not in signal:
            raise CommandError(f"--signal: name the version, e.g. {signal}@1 (scores belong to one version)")
        version = signal_version_get_by_ref(signal)

        def report(error: LineError) -> None:
            self.stderr.write(str(error))

        with progress_bar(total=None, unit="row", desc=f"import {path.name}") as bar:
            job = signal_scores_import(path=path, version=version, strict=strict, fmt=format, acting_user=actor,
                                       on_progress=lambda done: bar.update(done - bar.n), on_error=report)
        shown = "".join(f"\n  {u['source']}:{u['external_id']} (line {u['line']})"
                        for u in job.unknown_items[:UNKNOWN_SHOWN])
        more = f"\n  … {job.unknown - UNKNOWN_SHOWN} more" if job.unknown > UNKNOWN_SHOWN else ""
        self._emit(_import_document(job, version), json,
                   f"{path}: imported {job.imported} into {version}, duplicate {job.duplicates}, rejected "
                   f"{job.rejected}, unknown items {job.unknown} (import #{job.pk})"
                   + (f"; unknown:{shown}{more}" if job.unknown else ""))

    def _import_run(self, *, run: str, signal: str | None, json: bool, user: str | None, **_: Any) -> None:
        actor = acting_user(user)
        version, added = signal_version_from_run(run=labeling_run_get(name_or_id=run), signal_name=signal,
                                                 acting_user=actor)
        version = signal_version_get(name=version.signal.name, number=version.number)
        self._emit({**_version_document(version), "added": added}, json,
                   f"{version}: {added} scores added from labeling run {run} ({version.score_count} in all)")

    def _list(self, *, json: bool, **_: Any) -> None:
        signals = list(signal_list())
        if json:
            self._emit([{"signal": s.name, "kind": s.kind, "policy": s.policy.slug, "output_type": s.output_type,
                         "score_label": s.score_label, "versions": s.version_count} for s in signals], True, "")
            return
        if not signals:
            self.stdout.write("no signals yet: `manage.py signal create`")
        for s in signals:
            target = f" of {s.score_label}" if s.score_label else ""
            self.stdout.write(f"{s.name}  {s.kind}  policy {s.policy.slug}  {s.output_type}{target}  "
                              f"{s.version_count} versions")

    def _show(self, *, ref: str, json: bool, **_: Any) -> None:
        if "@" in ref:
            document = _version_document(signal_version_get_by_ref(ref))
            lines = [f"{k}: {v}" for k, v in document.items()]
            self._emit(document, json, "\n".join(lines))
            return
        signal = signal_get(name=ref)
        versions = [_version_document(v) for v in signal_version_list(signal=signal)]
        document = {"signal": signal.name, "kind": signal.kind, "policy": signal.policy.slug,
                    "output_type": signal.output_type, "score_label": signal.score_label,
                    "description": signal.description,
                    "owner": signal.owner.get_username() if signal.owner else None, "versions": versions}
        text = "\n".join([f"{signal.name} ({signal.kind}, policy {signal.policy.slug}, {signal.output_type})",
                          *(f"  v{v['version']}: {v['rows']} scores, labels of {v['policy_version']}"
                            + (f", run {v['labeling_run']}" if v["labeling_run"] else "") for v in versions)])
        self._emit(document, json, text)
