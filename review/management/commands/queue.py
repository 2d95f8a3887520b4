"""``python manage.py queue create|push|sync|status|recreate|labelers|pause|resume``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from policies.selectors import policy_version_for_labels
from review import selectors
from review.models import ReviewQueue, ReviewQueuePurpose
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
        add_user_argument(p)
        p = sub.add_parser("labelers", help="per labeler and vendor: accuracy and κ on hidden gold, peers, speed")
        p.add_argument("name", nargs="?", help="only this queue")
        for action, text in (("pause", "pause a labeler: their labels stop counting, their open tasks go to others"),
                             ("resume", "count a paused labeler's labels again from now on")):
            p = sub.add_parser(action, help=text)
            p.add_argument("labeler", metavar="[VENDOR/]LABELER", help="the labeler's id at their vendor")
            p.add_argument("--reason", default="")
            add_user_argument(p)
        for action, text in (("push", "push the items LLM runs routed to human review"),
                             ("sync", "pull every annotation changed since the last sync"),
                             ("status", "pending, in progress and complete tasks"),
                             ("recreate", "recreate a project deleted by hand in Label Studio")):
            p = sub.add_parser(action, help=text)
            p.add_argument("name", nargs="?" if action == "status" else None,
                           help="the queue" + (" (default: every queue)" if action == "status" else ""))
            if action in ("recreate", "push"):
                add_user_argument(p)

    @application_errors_as_command_errors
    def handle(self, *args: Any, action: str, **o: Any) -> None:
        # Every state change names its actor; reading (labelers, status) and pulling labels (sync) need none.
        user = acting_user(o.get("user")) if action in ("create", "push", "recreate", "pause", "resume") else None
        o.pop("user", None)
        if action == "status" and not o["name"]:
            for queue in ReviewQueue.objects.select_related("vendor").order_by("name"):
                self._status(queue)
            return
        if action in ("labelers", "pause", "resume"):
            getattr(self, f"_{action}")(user=user, **o)
            return
        name = o["name"]
        if action == "create":
            queue = queues.review_queue_create(
                name=name, policy_version=policy_version_for_labels(o["policy"]), vendor_name=o["vendor"],
                overlap=o["overlap"], purpose=o["purpose"], adjudication_queue=o["adjudication_queue"],
                disagreement_rule=o["disagreement"], gold_share=o["gold_share"],
                show_llm_suggestions=o["llm_suggestions"], acting_user=user)
            self.stdout.write(f"created queue {queue.name} for {queue.vendor} ({queue.policy_version}, "
                              f"k={queue.overlap}): Label Studio project {queue.ls_project_id}")
            return
        queue = ReviewQueue.objects.select_related("policy_version", "vendor").filter(name=name).first()
        if queue is None:
            raise CommandError(f"no queue named {name!r}")
        if action == "push":
            result = queues.review_queue_push(queue=queue, acting_user=user)
            self.stdout.write(f"{queue.name}: {result.added} new tasks ({result.gold} hidden gold), "
                              f"{result.pushed} pushed, {result.recovered} recovered from an interrupted push"
                              + (f", {result.retries} retries while Label Studio was unreachable"
                                 if result.retries else ""))
        elif action == "sync":
            result = queues.review_queue_sync(queue=queue)
            self.stdout.write(f"{queue.name}: {result.tasks} tasks changed; labels {result.created} new, "
                              f"{result.updated} updated, {result.unchanged} unchanged, {result.invalid} invalid, "
                              f"{result.ignored} ignored; "
                              f"{result.completed} tasks completed, {result.escalated} sent to adjudication")
            for labeler in quality.labelers_flag():
                self.stdout.write(f"flagged {labeler}: {labeler.flag_reason}")
        elif action == "recreate":
            queue = queues.review_queue_recreate_project(queue=queue, acting_user=user)
            self.stdout.write(f"{queue.name}: new Label Studio project {queue.ls_project_id}; push again")
        else:
            self._status(queue)

    def _status(self, queue: ReviewQueue) -> None:
        counts = queues.review_queue_status(queue=queue)
        self.stdout.write(f"{queue.name} ({queue.vendor}, k={queue.overlap}, project {queue.ls_project_id}): "
                          + ", ".join(f"{k} {v}" for k, v in counts.items()))

    def _labelers(self, *, name: str | None, user: Any, **_: Any) -> None:
        queue_id = None
        if name:
            queue_id = ReviewQueue.objects.filter(name=name).values_list("pk", flat=True).first()
            if queue_id is None:
                raise CommandError(f"no queue named {name!r}")
        bar = quality.quality_bar()
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

    def _pause(self, *, labeler: str, reason: str, user: Any, **_: Any) -> None:
        found = selectors.labeler_by_ref(labeler)
        tasks = quality.labeler_pause(labeler=found, reason=reason, acting_user=user)
        self.stdout.write(f"paused {found}; {len(tasks)} unfinished tasks served to other labelers")

    def _resume(self, *, labeler: str, user: Any, **_: Any) -> None:
        found = selectors.labeler_by_ref(labeler)
        quality.labeler_resume(labeler=found, acting_user=user)
        self.stdout.write(f"resumed {found}: their labels count again from now on")


def _num(value: float | None, width: int, places: int = 2) -> str:
    return f"{'—':>{width}}" if value is None else f"{value:>{width}.{places}f}"
