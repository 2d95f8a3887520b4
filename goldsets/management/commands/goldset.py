"""``python manage.py goldset freeze|stats|export|diff|list``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from goldsets.exports import FORMATS, goldset_version_export
from goldsets.freeze import RULES, FreezeRule
from goldsets.models import GoldenSetVersion, GoldenSetVersionStatus
from goldsets.selectors import (
    goldset_freezes_building,
    goldset_list,
    goldset_version_diff,
    goldset_version_get,
    goldset_version_list,
    goldset_version_stats_document,
)
from goldsets.services import (
    FREEZE_STALE_AFTER_SECONDS,
    goldset_version_build,
    goldset_version_freeze_request,
    goldset_version_hidden_gold_add,
)
from policies.selectors import policy_version_for_labels
from touchstone.cli import acting_user, add_user_argument, application_errors_as_command_errors
from touchstone.errors import BrokerUnavailable
from touchstone.progress import progress_bar


def _fmt(value: dict | None) -> str:
    if value is None or value.get("value") is None:
        return "undefined" + (f" ({value['reason']})" if value and value.get("reason") else "")
    ci = f"  [{value['ci_low']:.3f}, {value['ci_high']:.3f}]" if value.get("ci_low") is not None else ""
    return f"{value['value']:.3f}{ci}"


class Command(BaseCommand):
    help = "Freeze, inspect, export and compare golden-set versions."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        p = sub.add_parser("freeze", help="freeze a new version (creates the golden set if needed)")
        p.add_argument("name")
        p.add_argument("--policy", required=True, metavar="SLUG[@VERSION]")
        p.add_argument("--min-labels", type=int, default=3)
        p.add_argument("--rule", choices=RULES, default="majority")
        p.add_argument("--include-llm-only", action="store_true",
                       help="also take items LLM voters auto-accepted without any human label (marked)")
        p.add_argument("--changelog", default="")
        p.add_argument("--description", default="")
        p.add_argument("--worker", action="store_true",
                       help="hand the freeze to a Celery worker on the freeze queue and wait for it")
        p.add_argument("--timeout", type=float, default=3600, help="with --worker: seconds to wait")
        p.add_argument("--json", action="store_true")
        add_user_argument(p)
        p = sub.add_parser("stats", help="agreement statistics of a version")
        p.add_argument("name")
        p.add_argument("--version", type=int)
        p.add_argument("--json", action="store_true")
        p = sub.add_parser("export", help="export a version with its manifest and dataset card")
        p.add_argument("name")
        p.add_argument("--version", type=int)
        p.add_argument("--format", choices=FORMATS, required=True)
        p.add_argument("--output", required=True, help="a file, or a directory (existing, or ending in /)")
        p.add_argument("--raw-ids", action="store_true", help="raw labeler ids (needs the permission; --user)")
        p.add_argument("--json", action="store_true")
        add_user_argument(p)
        p = sub.add_parser("diff", help="items added, removed and with changed gold between two versions")
        p.add_argument("name")
        p.add_argument("a", type=int)
        p.add_argument("b", type=int)
        p.add_argument("--json", action="store_true")
        p.add_argument("--limit", type=int, default=20, help="items listed per kind (text output)")
        sub.add_parser("list", help="golden sets and their versions").add_argument("--json", action="store_true")
        p = sub.add_parser("hidden-gold", help="make a frozen version's human-decided items hidden gold for "
                                               "vendor review queues")
        p.add_argument("name")
        p.add_argument("--version", type=int, help="default: the newest frozen version")
        p.add_argument("--json", action="store_true")
        add_user_argument(p)

    @application_errors_as_command_errors
    def handle(self, *args: Any, action: str, **options: Any) -> None:
        getattr(self, f"_{action.replace('-', '_')}")(**options)

    def _freeze(self, *, name: str, policy: str, min_labels: int, rule: str, include_llm_only: bool, changelog: str,
                description: str, worker: bool, timeout: float, user: str | None, json: bool = False,
                **_: Any) -> None:
        actor = acting_user(user)
        try:
            freeze_rule = FreezeRule(min_labels=min_labels, rule=rule, include_llm_only=include_llm_only)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        try:
            version = goldset_version_freeze_request(
                name=name, policy_version=policy_version_for_labels(policy), rule=freeze_rule, changelog=changelog,
                description=description, on_worker=worker, acting_user=actor)
        except BrokerUnavailable as exc:
            raise CommandError(f"{exc.message} (or freeze in this process: drop --worker)") from exc
        if worker:
            version = self._wait_for_worker(version, timeout)
        else:
            with progress_bar(total=None, unit="item", desc=f"freeze {name}") as bar:
                def progress(done: int, total: int) -> None:
                    bar.total = total
                    bar.update(done - bar.n)
                version = goldset_version_build(version_id=version.pk, on_progress=progress)
        if json:
            self.stdout.write(_json_dumps(_version_json(version)))
            return
        if version.status == GoldenSetVersionStatus.UNCHANGED:
            self.stdout.write(f"unchanged: the same items, gold labels and labels as {version.golden_set.name} "
                              f"v{version.parent.number} (digest {version.digest}); no new version made "
                              f"(request #{version.pk})")
            return
        self.stdout.write(f"froze {version.golden_set.name} v{version.number}: {version.item_count} items, "
                          f"digest {version.digest}")
        left_out = ", ".join(f"{k} {v}" for k, v in version.excluded.items())
        if left_out:
            self.stdout.write(f"left out: {left_out}")

    def _wait_for_worker(self, version: GoldenSetVersion, timeout: float) -> GoldenSetVersion:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            version.refresh_from_db()
            if version.status in (GoldenSetVersionStatus.FROZEN, GoldenSetVersionStatus.UNCHANGED):
                return version
            if version.status == GoldenSetVersionStatus.FAILED:
                raise CommandError(f"freeze failed: {version.failure_reason}")
            time.sleep(0.5)
        raise CommandError(f"no worker finished freeze #{version.pk} within {timeout:.0f} s; is a worker "
                           "consuming the freeze queue? (the request stays; its task runs when one is)")

    def _stats(self, *, name: str, version: int | None, json: bool, **_: Any) -> None:
        document = goldset_version_stats_document(goldset_version_get(name=name, number=version))
        if json:
            self.stdout.write(_json_dumps(document))
            return
        self.stdout.write(f"{document['golden_set']} v{document['version']}: {document['items']} items, "
                          f"digest {document['digest']}")
        self.stdout.write("gold labels: " + ", ".join(f"{k} {v}" for k, v in document["labels"].items()))
        agreement = document["percent_agreement"]
        self.stdout.write(f"percent agreement     {agreement:.3f}" if agreement is not None
                          else "percent agreement     undefined")
        for key, title in (("fleiss_kappa", "Fleiss' kappa"), ("krippendorff_alpha", "Krippendorff's alpha"),
                           ("gwet_ac1", "Gwet's AC1")):
            self.stdout.write(f"{title:<22}{_fmt(document[key])}")
        for row in document["vendors"]:
            self.stdout.write(f"vendor {row['vendor']}: {row['items']} labels, accuracy {row['accuracy']:.3f}, "
                              f"kappa {_fmt(row['kappa'])}")

    def _export(self, *, name: str, version: int | None, format: str, output: str, raw_ids: bool,
                user: str | None, json: bool = False, **_: Any) -> None:
        target = goldset_version_get(name=name, number=version)
        if raw_ids:
            actor = acting_user(user)
            if not actor.has_perm("goldsets.view_raw_labeler_ids"):
                raise CommandError(f"--raw-ids: {actor.get_username()} may not see raw labeler ids")
        with progress_bar(total=target.item_count, unit="item", desc=f"export {format}") as bar:
            result = goldset_version_export(version=target, fmt=format, output=Path(output), raw_ids=raw_ids,
                                            into_directory=output.endswith("/") or Path(output).is_dir(),
                                            on_progress=lambda done: bar.update(done - bar.n))
        if json:
            self.stdout.write(_json_dumps({
                "golden_set": target.golden_set.name, "version": target.number, "format": format, "raw_ids": raw_ids,
                "items": result.items, "path": str(result.path), "file_sha256": result.file_sha256,
                "digest": target.digest, "digest_verified": True, "manifest": str(result.manifest_path),
                "card": str(result.card_path)}))
            return
        self.stdout.write(f"wrote {result.items} items to {result.path} (sha256 {result.file_sha256}); digest "
                          f"{target.digest} verified; manifest {result.manifest_path}; card {result.card_path}")

    def _diff(self, *, name: str, a: int, b: int, json: bool, limit: int, **_: Any) -> None:
        diff = goldset_version_diff(old=goldset_version_get(name=name, number=a),
                                    new=goldset_version_get(name=name, number=b))
        if json:
            self.stdout.write(_json_dumps({"golden_set": name, "from": a, "to": b, "counts": diff.counts(),
                                           "added": diff.added, "removed": diff.removed,
                                           "gold_label_changed": [{"item": i, "from": x, "to": y}
                                                                  for i, x, y in diff.changed]}))
            return
        self.stdout.write(f"{name} v{a} → v{b}: " + ", ".join(f"{k} {v}" for k, v in diff.counts().items()))
        for title, rows in (("added", diff.added), ("removed", diff.removed)):
            for key in rows[:limit]:
                self.stdout.write(f"  {title:<8}{key}")
        for key, old, new in diff.changed[:limit]:
            self.stdout.write(f"  changed {key}: {old} → {new}")

    def _list(self, *, json: bool = False, **_: Any) -> None:
        if json:
            self.stdout.write(_json_dumps({"golden_sets": [
                {"name": golden_set.name, "policy": golden_set.policy.slug,
                 "versions": [_version_json(v) for v in goldset_version_list(golden_set=golden_set)[:5]],
                 "building": [{"freeze": freeze.pk, "created_at": freeze.created_at.isoformat(),
                               "created_by": freeze.created_by.get_username() if freeze.created_by else None,
                               "stale": (timezone.now() - freeze.created_at).total_seconds()
                               > FREEZE_STALE_AFTER_SECONDS}
                              for freeze in goldset_freezes_building(golden_set=golden_set)]}
                for golden_set in goldset_list()]}))
            return
        for golden_set in goldset_list():
            versions = list(goldset_version_list(golden_set=golden_set)[:5])
            summary = ", ".join(f"v{v.number} ({v.item_count} items, {v.frozen_at:%Y-%m-%d})" for v in versions)
            self.stdout.write(f"{golden_set.name} [{golden_set.policy.slug}]: {summary or 'no frozen version'}")
            now = timezone.now()
            for freeze in goldset_freezes_building(golden_set=golden_set):
                age = (now - freeze.created_at).total_seconds()
                who = freeze.created_by.get_username() if freeze.created_by else "-"
                state = (f"STALE: longer than any freeze takes ({FREEZE_STALE_AFTER_SECONDS} s); the process "
                         "that ran it was likely killed; the next freeze of this set or the watchdog marks it "
                         "failed" if age > FREEZE_STALE_AFTER_SECONDS else "in progress")
                self.stdout.write(f"  freeze #{freeze.pk} building for {_duration(age)} (requested by {who}): "
                                  f"{state}")

    def _hidden_gold(self, *, name: str, version: int | None, user: str | None, json: bool = False,
                     **_: Any) -> None:
        actor = acting_user(user)
        target = goldset_version_get(name=name, number=version)
        added = goldset_version_hidden_gold_add(version=target, acting_user=actor)
        if json:
            self.stdout.write(_json_dumps({"golden_set": name, "version": target.number, "hidden_gold_added": added}))
            return
        self.stdout.write(f"{added} items of {name} are now hidden gold")


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def _version_json(version: GoldenSetVersion) -> dict[str, Any]:
    """A version as ``goldset freeze --json`` and ``list --json`` print it."""
    return {"golden_set": version.golden_set.name, "version": version.number, "request": version.pk,
            "status": version.status, "items": version.item_count, "digest": version.digest,
            "same_as": version.parent.number if version.status == GoldenSetVersionStatus.UNCHANGED and version.parent
            else None, "label_distribution": version.label_distribution, "excluded": version.excluded,
            "frozen_at": version.frozen_at.isoformat() if version.frozen_at else None}


def _json_dumps(document: dict) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)
