"""``python manage.py queue create|push|sync|status|recreate``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from labeling.models import ReviewQueue, ReviewQueuePurpose
from labeling.selectors import policy_version_for_labels
from labeling.services import queues
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
        add_user_argument(p)
        for action, text in (("push", "push the items LLM runs routed to human review"),
                             ("sync", "pull every annotation changed since the last sync"),
                             ("status", "pending, in progress and complete tasks"),
                             ("recreate", "recreate a project deleted by hand in Label Studio")):
            p = sub.add_parser(action, help=text)
            p.add_argument("name")
            if action == "recreate":
                add_user_argument(p)

    @application_errors_as_command_errors
    def handle(self, *args: Any, action: str, name: str, **o: Any) -> None:
        if action == "create":
            queue = queues.review_queue_create(
                name=name, policy_version=policy_version_for_labels(o["policy"]), vendor_name=o["vendor"],
                overlap=o["overlap"], purpose=o["purpose"], adjudication_queue=o["adjudication_queue"],
                disagreement_rule=o["disagreement"], acting_user=acting_user(o["user"]) if o["user"] else None)
            self.stdout.write(f"created queue {queue.name} for {queue.vendor} ({queue.policy_version}, "
                              f"k={queue.overlap}): Label Studio project {queue.ls_project_id}")
            return
        queue = ReviewQueue.objects.select_related("policy_version", "vendor").filter(name=name).first()
        if queue is None:
            raise CommandError(f"no queue named {name!r}")
        if action == "push":
            result = queues.review_queue_push(queue=queue)
            self.stdout.write(f"{queue.name}: {result.added} new items, {result.pushed} tasks pushed, "
                              f"{result.recovered} recovered from an interrupted push")
        elif action == "sync":
            result = queues.review_queue_sync(queue=queue)
            self.stdout.write(f"{queue.name}: {result.tasks} tasks changed; labels {result.created} new, "
                              f"{result.updated} updated, {result.invalid} invalid, {result.ignored} ignored; "
                              f"{result.completed} tasks completed, {result.escalated} sent to adjudication")
        elif action == "recreate":
            queue = queues.review_queue_recreate_project(
                queue=queue, acting_user=acting_user(o["user"]) if o["user"] else None)
            self.stdout.write(f"{queue.name}: new Label Studio project {queue.ls_project_id}; push again")
        else:
            counts = queues.review_queue_status(queue=queue)
            self.stdout.write(f"{queue.name} ({queue.vendor}, k={queue.overlap}, project {queue.ls_project_id}): "
                              + ", ".join(f"{k} {v}" for k, v in counts.items()))
