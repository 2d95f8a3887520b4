"""``python manage.py queue create|push|sync|status|recreate|labelers|pause|resume [--json]``.

With ``--json`` each subcommand prints one JSON document (indent 2, dates ISO 8601) with the
facts its text shows, and nothing else on stdout."""

from __future__ import annotations

import json as _json
from dataclasses import asdict
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from policies.selectors import policy_version_for_labels
from review import selectors
from review.models import Labeler, ReviewQueue, ReviewQueuePurpose
from review.services import quality, queues
from touchstone.cli import acting_user, add_user_argument, application_errors_as_command_errors


class Command(BaseCommand):
    help = "Review queues in Label Studio: create, push routed items, sync labels back, status."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        p = sub.add_parser("create", help="create a queue and its Label Studio project")
        p.add_argument("name")
        p.add_argument("--policy", required=True, metavar="SLUG[@VERSION]")
        p.add_argument("--vendor", required=True)
        p.add_argument("--overlap", type=int, default=2, help="labels per item from different labelers (k)")
        p.add_argument("--purpose", choices=ReviewQueuePurpose.values, default=ReviewQueuePurpose.REVIEW)
        p.add_argument("--adjudication-queue", help="send items whose labels disagree to this (expert) queue")
        p.add_argument("--disagreement", choices=["no_majority", "any_violating_dissent"], default="no_majority")
        p.add_argument("--gold-share", type=float, default=0.0, help="share of hidden gold tasks mixed in (0..1)")
        p.add_argument("--llm-suggestions", action="store_true",
                       help="show the LLM's label as a pre-annotation (off by default: it anchors labelers)")
        _add_json_argument(p)
        add_user_argument(p)
        p = sub.add_parser("labelers", help="per labeler and vendor: accuracy and κ on hidden gold, peers, speed")
        p.add_argument("name", nargs="?", help="only this queue")
        _add_json_argument(p)
        for action, text in (("pause", "pause a labeler: their labels stop counting, their open tasks go to others"),
                             ("resume", "count a paused labeler's labels again from now on")):
            p = sub.add_parser(action, help=text)
            p.add_argument("labeler", metavar="[VENDOR/]LABELER", help="the labeler's id at their vendor")
            p.add_argument("--reason", default="")
            _add_json_argument(p)
            add_user_argument(p)
        for action, text in (("push", "push the items LLM runs routed to human review"),
                             ("sync", "pull every annotation changed since the last sync"),
                             ("status", "pending, in progress and complete tasks"),
                             ("recreate", "recreate a project deleted by hand in Label Studio")):
            p = sub.add_parser(action, help=text)
            p.add_argument("name", nargs="?" if action == "status" else None,
                           help="the queue" + (" (default: every queue)" if action == "status" else ""))
            _add_json_argument(p)
            if action in ("recreate", "push"):
                add_user_argument(p)

    @application_errors_as_command_errors
    def handle(self, *args: Any, action: str, **o: Any) -> None:
        # Every state change names its actor; reading (labelers, status) and pulling labels (sync) need none.
        user = acting_user(o.get("user")) if action in ("create", "push", "recreate", "pause", "resume") else None
        o.pop("user", None)
        as_json = o.pop("json", False)
        if action == "status" and not o["name"]:
            every = ReviewQueue.objects.select_related("vendor", "policy_version__policy").order_by("name")
            if as_json:
                self.stdout.write(_dumps({"queues": [_status_document(queue) for queue in every]}))
                return
            for queue in every:
                self._status(queue)
            return
        if action in ("labelers", "pause", "resume"):
            getattr(self, f"_{action}")(user=user, as_json=as_json, **o)
            return
        name = o["name"]
        if action == "create":
            queue = queues.review_queue_create(
                name=name, policy_version=policy_version_for_labels(o["policy"]), vendor_name=o["vendor"],
                overlap=o["overlap"], purpose=o["purpose"], adjudication_queue=o["adjudication_queue"],
                disagreement_rule=o["disagreement"], gold_share=o["gold_share"],
                show_llm_suggestions=o["llm_suggestions"], acting_user=user)
            if as_json:
                self.stdout.write(_dumps(_queue_document(queue)))
                return
            self.stdout.write(f"created queue {queue.name} for {queue.vendor} ({queue.policy_version}, "
                              f"k={queue.overlap}): Label Studio project {queue.ls_project_id}")
            return
        queue = ReviewQueue.objects.select_related("policy_version", "vendor").filter(name=name).first()
        if queue is None:
            raise CommandError(f"no queue named {name!r}")
        if action == "push":
            result = queues.review_queue_push(queue=queue, acting_user=user)
            if as_json:
                self.stdout.write(_dumps({"queue": queue.name, **asdict(result)}))
                return
            self.stdout.write(f"{queue.name}: {result.added} new tasks ({result.gold} hidden gold), "
                              f"{result.pushed} pushed, {result.recovered} recovered from an interrupted push"
                              + (f", {result.retries} retries while Label Studio was unreachable"
                                 if result.retries else ""))
        elif action == "sync":
            result = queues.review_queue_sync(queue=queue)
            if as_json:
                flagged = quality.labelers_flag()
                queue.refresh_from_db()
                self.stdout.write(_dumps({"queue": queue.name, **asdict(result),
                                          "last_synced_at": _iso(queue.last_synced_at),
                                          "flagged": [{**_labeler_document(labeler), "reason": labeler.flag_reason}
                                                      for labeler in flagged]}))
                return
            self.stdout.write(f"{queue.name}: {result.tasks} tasks changed; labels {result.created} new, "
                              f"{result.updated} updated, {result.unchanged} unchanged, {result.invalid} invalid, "
                              f"{result.ignored} ignored; "
                              f"{result.completed} tasks completed, {result.escalated} sent to adjudication")
            for labeler in quality.labelers_flag():
                self.stdout.write(f"flagged {labeler}: {labeler.flag_reason}")
        elif action == "recreate":
            queue = queues.review_queue_recreate_project(queue=queue, acting_user=user)
            if as_json:
                self.stdout.write(_dumps(_queue_document(queue)))
                return
            self.stdout.write(f"{queue.name}: new Label Studio project {queue.ls_project_id}; push again")
        elif as_json:
            self.stdout.write(_dumps(_status_document(queue)))
        else:
            self._status(queue)

    def _status(self, queue: ReviewQueue) -> None:
        counts = queues.review_queue_status(queue=queue)
        self.stdout.write(f"{queue.name} ({queue.vendor}, k={queue.overlap}, project {queue.ls_project_id}): "
                          + ", ".join(f"{k} {v}" for k, v in counts.items()))

    def _labelers(self, *, name: str | None, user: Any, as_json: bool = False, **_: Any) -> None:
        queue_id = None
        if name:
            queue_id = ReviewQueue.objects.filter(name=name).values_list("pk", flat=True).first()
            if queue_id is None:
                raise CommandError(f"no queue named {name!r}")
        bar = quality.quality_bar()
        if as_json:
            self.stdout.write(_dumps({
                "queue": name,
                "labelers": [{"labeler": _labeler_document(row["labeler"]),
                              "flag_reason": row["labeler"].flag_reason,
                              **{k: v for k, v in row.items() if k != "labeler"}}
                             for row in selectors.labeler_quality(queue_id)],
                "vendors": selectors.vendor_quality(queue_id),
                "bar": {"min_accuracy": bar.min_accuracy, "min_gold_items": bar.min_gold_items}}))
            return
        self.stdout.write(f"{'labeler':<32} {'status':<8} {'labels':>7} {'gold':>5} {'acc':>5} {'kappa':>6} "
                          f"{'peers':>6} {'/day':>6} {'med s':>6}  flag")
        for row in selectors.labeler_quality(queue_id):
            labeler = row["labeler"]
            self.stdout.write(
                f"{str(labeler)[:32]:<32} {labeler.status:<8} {row['labels']:>7} {row['gold_items']:>5} "
                f"{_num(row['accuracy'], 5)} {_num(row['kappa'], 6)} {_num(row['peer_agreement'], 6)} "
                f"{row['labels_per_day']:>6.1f} {_num(row['median_seconds'], 6, 1)}  {labeler.flag_reason}")
        for row in selectors.vendor_quality(queue_id):
            self.stdout.write(f"vendor {row['vendor']}: {row['labels']} labels, accuracy on {row['gold_items']} gold "
                              f"{_num(row['accuracy'], 0)}, κ {_num(row['kappa'], 0)}, peer agreement "
                              f"{_num(row['peer_agreement'], 0)}")
        self.stdout.write(f"bar: accuracy {bar.min_accuracy:.2f} after {bar.min_gold_items} gold items")

    def _pause(self, *, labeler: str, reason: str, user: Any, as_json: bool = False, **_: Any) -> None:
        found = selectors.labeler_by_ref(labeler)
        tasks = quality.labeler_pause(labeler=found, reason=reason, acting_user=user)
        if as_json:
            found.refresh_from_db()
            self.stdout.write(_dumps({**_labeler_document(found), "reason": reason, "tasks_reserved": len(tasks)}))
            return
        self.stdout.write(f"paused {found}; {len(tasks)} unfinished tasks served to other labelers")

    def _resume(self, *, labeler: str, user: Any, as_json: bool = False, **_: Any) -> None:
        found = selectors.labeler_by_ref(labeler)
        quality.labeler_resume(labeler=found, acting_user=user)
        if as_json:
            found.refresh_from_db()
            self.stdout.write(_dumps(_labeler_document(found)))
            return
        self.stdout.write(f"resumed {found}: their labels count again from now on")


def _num(value: float | None, width: int, places: int = 2) -> str:
    return f"{'—':>{width}}" if value is None else f"{value:>{width}.{places}f}"


def _add_json_argument(parser: CommandParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _queue_document(queue: ReviewQueue) -> dict[str, Any]:
    return {"queue": queue.name, "id": queue.pk, "vendor": queue.vendor.name,
            "policy_version": str(queue.policy_version), "purpose": queue.purpose, "overlap": queue.overlap,
            "gold_share": queue.gold_share, "show_llm_suggestions": queue.show_llm_suggestions,
            "disagreement_rule": queue.disagreement_rule,
            "adjudication_queue": queue.adjudication_queue.name if queue.adjudication_queue_id else None,
            "ls_project_id": queue.ls_project_id, "last_synced_at": _iso(queue.last_synced_at),
            "status_detail": queue.status_detail, "created_at": _iso(queue.created_at)}


def _status_document(queue: ReviewQueue) -> dict[str, Any]:
    return {**_queue_document(queue), "counts": queues.review_queue_status(queue=queue)}


def _labeler_document(labeler: Labeler) -> dict[str, Any]:
    return {"labeler": str(labeler), "id": labeler.pk, "vendor": labeler.vendor.name,
            "external_id": labeler.external_id, "status": labeler.status, "paused_at": _iso(labeler.paused_at),
            "flagged_at": _iso(labeler.flagged_at)}


def _dumps(document: dict[str, Any]) -> str:
    return _json.dumps(document, indent=2, ensure_ascii=False)
