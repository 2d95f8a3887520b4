"""``python manage.py run create|start|status|pause|resume|cancel|retry-failed [--json]``.

With ``--json`` each subcommand prints one JSON document (indent 2, dates ISO 8601): ``create``
the new run with its estimate, the others the run's state afterwards (with ``--wait``, its final
state; progress stays on stderr).

``run create NAME --golden-set NAME[@N]`` labels a frozen golden-set version's items (a census
sample ``golden:NAME@N`` made by the goldsets app, see ``runs.item_sets``) instead of a drawn
``--sample``: how a candidate prompt, whose policy version is not published yet, gets evaluated
for the publish gate (so it implies ``--allow-retired``)."""

from __future__ import annotations

import json as _json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from content.models import Sample
from policies.models import PromptVersion
from runs.item_sets import item_set_sample
from runs.models import LLMEndpoint, RunStatus
from runs.selectors import labeling_run_failures, labeling_run_get, labeling_run_progress
from runs.services import runs as services
from touchstone.cli import acting_user, add_user_argument, application_errors_as_command_errors
from touchstone.progress import progress_bar

TERMINAL = (RunStatus.FINISHED, RunStatus.CANCELLED, RunStatus.FAILED)


def parse_voter(spec: str) -> services.VoterSpec:
    """``ENDPOINT:MODEL[:TEMPERATURE[:SEED]]``."""
    parts = spec.split(":")
    if len(parts) < 2:
        raise CommandError(f"--voter {spec!r}: use ENDPOINT:MODEL[:TEMPERATURE[:SEED]]")
    endpoint = LLMEndpoint.objects.filter(name=parts[0]).first()
    if endpoint is None:
        raise CommandError(f"--voter {spec!r}: no endpoint named {parts[0]!r} (see 'endpoint list')")
    try:
        temperature = float(parts[2]) if len(parts) > 2 else 0.0
        seed = int(parts[3]) if len(parts) > 3 else None
    except ValueError as exc:
        raise CommandError(f"--voter {spec!r}: {exc}") from exc
    return services.VoterSpec(endpoint, parts[1], temperature, seed)


class Command(BaseCommand):
    help = "Create and drive LLM labeling runs."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        p = sub.add_parser("create")
        p.add_argument("name")
        items = p.add_mutually_exclusive_group(required=True)
        items.add_argument("--sample")
        items.add_argument("--golden-set", metavar="NAME[@N]",
                           help="label a frozen golden-set version's items (default N: the newest frozen); "
                                "implies --allow-retired, for a candidate prompt")
        p.add_argument("--prompt", required=True, help="prompt version sha256 (or a unique prefix)")
        p.add_argument("--voter", action="append", required=True, help="ENDPOINT:MODEL[:TEMPERATURE[:SEED]]")
        p.add_argument("--confidence-threshold", type=float, default=0.7)
        p.add_argument("--audit-share", type=float, default=0.05)
        p.add_argument("--audit-seed", type=int, default=0)
        p.add_argument("--max-attempts", type=int, default=4)
        p.add_argument("--chunk-size", type=int, default=100)
        p.add_argument("--executor", choices=["realtime", "batch"], default="realtime",
                       help="batch: the OpenAI Batch API (cheaper, slower; endpoints need --supports-batch)")
        p.add_argument("--allow-retired", action="store_true",
                       help="label with a prompt whose policy version is retired or not yet published")
        p.add_argument("--json", action="store_true", help="print the new run as one JSON document")
        add_user_argument(p)
        for action in ("start", "status", "pause", "resume", "cancel", "retry-failed"):
            p = sub.add_parser(action)
            p.add_argument("run", help="run name or id")
            if action in ("start", "resume", "status", "retry-failed"):
                p.add_argument("--wait", action="store_true", help="follow progress until the run ends")
            p.add_argument("--json", action="store_true", help="print the run's state as one JSON document")
            add_user_argument(p)

    @application_errors_as_command_errors
    def handle(self, *args: Any, **o: Any) -> None:
        action = o["action"]
        actor = None if action == "status" else acting_user(o.get("user"))
        if action == "create":
            prompts = list(PromptVersion.objects.filter(sha256__startswith=o["prompt"])[:2])
            if len(prompts) != 1:
                raise CommandError(f"--prompt {o['prompt']!r}: {'no' if not prompts else 'more than one'} "
                                   "prompt version matches")
            if o["golden_set"]:
                sample = item_set_sample(kind="golden_set", ref=o["golden_set"], acting_user=actor)
                o["allow_retired"] = True
            else:
                sample = Sample.objects.filter(name=o["sample"]).first()
                if sample is None:
                    raise CommandError(f"--sample: no sample named {o['sample']!r}")
            run = services.labeling_run_create(
                name=o["name"], sample=sample, prompt_version=prompts[0], voters=[parse_voter(v) for v in o["voter"]],
                confidence_threshold=o["confidence_threshold"], audit_share=o["audit_share"],
                audit_seed=o["audit_seed"], max_attempts=o["max_attempts"], chunk_size=o["chunk_size"],
                executor=o["executor"], allow_retired=o["allow_retired"], acting_user=actor)
            if run.prompt_version.policy_version.status != "published":
                why = "a candidate on a golden set" if o["golden_set"] else "--allow-retired"
                self.stderr.write(f"warning: {run.prompt_version.policy_version} is "
                                  f"{run.prompt_version.policy_version.status}, not published ({why})")
            if o.get("json"):
                self.stdout.write(_dumps(_run_document(run)))
                return
            self.stdout.write(f"created run {run.name!r} (#{run.pk}): {run.sample.size} items × "
                              f"{run.voters.count()} voters; estimate {run.estimated_input_tokens} input and "
                              f"{run.estimated_output_tokens} output tokens, cost {run.estimated_cost}")
            return
        run = labeling_run_get(name_or_id=o["run"])
        retrying = None
        if action == "start":
            run = services.labeling_run_start(run=run, acting_user=actor)
        elif action == "pause":
            run = services.labeling_run_pause(run=run, acting_user=actor)
        elif action == "resume":
            run = services.labeling_run_resume(run=run, acting_user=actor)
        elif action == "cancel":
            run = services.labeling_run_cancel(run=run, acting_user=actor)
        elif action == "retry-failed":
            retrying = services.labeling_run_retry_failed(run=run, acting_user=actor)
            if not o.get("json"):
                self.stdout.write(f"retrying {retrying} items")
        if o.get("wait"):
            self.follow(run)
        run = labeling_run_get(name_or_id=str(run.pk))
        if o.get("json"):
            document = _run_document(run, progress=labeling_run_progress(run=run),
                                     failures=labeling_run_failures(run=run, limit=5))
            if retrying is not None:
                document["retrying"] = retrying
            self.stdout.write(_dumps(document))
            return
        self.report(run)

    def follow(self, run: Any) -> None:
        progress = labeling_run_progress(run=run)
        with progress_bar(total=progress.expected, unit="judgement", desc=run.name) as bar:
            while True:
                run.refresh_from_db()
                progress = labeling_run_progress(run=run)
                bar.update(progress.done - bar.n)
                if run.status in TERMINAL or run.status == RunStatus.PAUSED:
                    return
                time.sleep(1)

    def report(self, run: Any) -> None:
        p = labeling_run_progress(run=run)
        label = " [SIMULATED VOTERS]" if p.simulated else ""
        self.stdout.write(f"run {run.name!r}{label}: {p.status}{' — ' + p.status_detail if p.status_detail else ''}")
        self.stdout.write(f"  judgements {p.done}/{p.expected} ({p.percent:.1f} %): ok {p.ok}, failed {p.failed}, "
                          f"pending {p.pending}")
        self.stdout.write(f"  calls {p.calls}; tokens in {p.input_tokens} (cached {p.cached_tokens}), "
                          f"out {p.output_tokens}; cost {p.cost:.6f} (estimate {run.estimated_cost:.6f})")
        if p.outcomes:
            self.stdout.write("  decisions: " + ", ".join(f"{k} {v}" for k, v in sorted(p.outcomes.items())))
            self.stdout.write("  routing:   " + ", ".join(f"{k} {v}" for k, v in sorted(p.routing.items())))
        for judgement in labeling_run_failures(run=run, limit=5):
            self.stdout.write(f"  failed: {judgement.item} voter {judgement.voter.position}: {judgement.error[:120]}")


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _run_document(run: Any, progress: Any = None, failures: list | None = None) -> dict[str, Any]:
    """A run as ``--json`` prints it: what ``create`` and ``status`` show in text, the progress
    counters (``labeling_run_progress``) and the first failed judgements."""
    document: dict[str, Any] = {
        "run": run.pk, "name": run.name, "status": run.status, "status_detail": run.status_detail,
        "sample": run.sample.name, "items": run.sample.size,
        "prompt_version": run.prompt_version.sha256, "policy_version": str(run.prompt_version.policy_version),
        "executor": run.executor,
        "voters": [{"position": v.position, "endpoint": v.endpoint.name, "model": v.model,
                    "temperature": v.temperature, "seed": v.seed, "simulator": v.endpoint.is_simulator}
                   for v in run.voters.select_related("endpoint").order_by("position")],
        "estimated_input_tokens": run.estimated_input_tokens, "estimated_output_tokens": run.estimated_output_tokens,
        "estimated_cost": str(run.estimated_cost), "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at), "finished_at": _iso(run.finished_at)}
    if progress is not None:
        document["progress"] = progress.as_dict()
    if failures is not None:
        document["failures"] = [{"item": str(j.item), "item_id": j.item_id, "voter": j.voter.position,
                                 "error": j.error} for j in failures]
    return document


def _dumps(document: dict[str, Any]) -> str:
    return _json.dumps(document, indent=2, ensure_ascii=False)
