"""``python manage.py monitor create --file PATH``, ``monitor list``, ``monitor show NAME``,
``monitor run-now NAME [--date D] [--sync]``, ``monitor pause NAME``, ``monitor resume NAME``,
``monitor backfill NAME --from D --to D [--sync]``, ``monitor ack ALERT_ID --reason TEXT``; every one
with ``--json`` and ``--user``.

``--sync`` advances the cycles in this process (stopping where a cycle waits) instead of
leaving them to the workers."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from monitoring.models import Cycle, Monitor
from monitoring.selectors import cycle_list, monitor_get, monitor_list
from monitoring.services.cycles import cycle_run_to_rest
from monitoring.services.monitors import monitor_backfill, monitor_create_from_file, monitor_pause, monitor_run_now
from touchstone.cli import acting_user, add_user_argument, application_errors_as_command_errors
from touchstone.roles import permission_require


def _date(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD)") from exc


def monitor_document(monitor: Monitor) -> dict[str, Any]:
    return {"name": monitor.name, "policy": monitor.policy.slug, "cadence": monitor.cadence,
            "start": monitor.start_date.isoformat(), "paused": monitor.is_paused,
            "review_queue": monitor.review_queue.name if monitor.review_queue else None,
            "alert_rules": monitor.alert_rules, "spec": monitor.spec}


def cycle_document(cycle: Cycle) -> dict[str, Any]:
    return {"id": cycle.pk, "partition": cycle.partition_date.isoformat(), "state": cycle.state,
            "stage": cycle.stage, "reason": cycle.reason, "backfill": cycle.is_backfill,
            "sample": cycle.sample.name if cycle.sample_id else None, "audit_items": cycle.audit_items,
            "labels_in": cycle.labels_in, "estimated_with_pending": cycle.estimated_with_pending,
            "label_deadline": cycle.label_deadline_at.isoformat() if cycle.label_deadline_at else None,
            "cost": str(cycle.cost), "input_tokens": cycle.input_tokens, "output_tokens": cycle.output_tokens,
            "finished_at": cycle.finished_at.isoformat() if cycle.finished_at else None}


def cycle_line(cycle: Cycle) -> str:
    return f"{cycle.partition_date} #{cycle.pk}: {cycle.shown_state}" + (
        f" · {cycle.labels_in}/{cycle.audit_items} audit labels · cost {cycle.cost:.4f}" if cycle.sample_id else "")


class Command(BaseCommand):
    help = "Scheduled prevalence monitors: create from a file, list, show, run now, pause, resume, backfill."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        p = sub.add_parser("create", help="a monitor from a YAML file (see monitoring/schema.py)")
        p.add_argument("--file", required=True, type=Path)
        p = sub.add_parser("list", help="every monitor")
        p = sub.add_parser("show", help="a monitor and its cycles")
        p.add_argument("name")
        for action in ("pause", "resume"):
            p = sub.add_parser(action, help=f"{action} a monitor")
            p.add_argument("name")
        p = sub.add_parser("run-now", help="make (or re-queue) the cycle of the newest due partition")
        p.add_argument("name")
        p.add_argument("--date", type=_date, help="the partition (default: the newest due one)")
        p.add_argument("--sync", action="store_true", help="advance it here, not on the workers")
        p = sub.add_parser("backfill", help="make and run the cycles of past partitions (idempotent)")
        p.add_argument("name")
        p.add_argument("--from", dest="date_from", type=_date, required=True)
        p.add_argument("--to", dest="date_to", type=_date, required=True)
        p.add_argument("--sync", action="store_true", help="advance them here, not on the workers")
        p = sub.add_parser("ack", help="acknowledge an alert (audited)")
        p.add_argument("alert_id", type=int)
        p.add_argument("--reason", required=True, help="what was checked or done")
        for p in sub.choices.values():
            p.add_argument("--json", action="store_true")
            add_user_argument(p)

    @application_errors_as_command_errors
    def handle(self, *args: Any, **o: Any) -> None:
        user = acting_user(o["user"])
        getattr(self, "_" + o["action"].replace("-", "_"))(o, user)

    def _out(self, o: dict[str, Any], document: Any, text: str) -> None:
        self.stdout.write(json.dumps(document, indent=2) if o["json"] else text)

    def _create(self, o: dict[str, Any], user) -> None:
        monitor = monitor_create_from_file(path=o["file"], acting_user=user)
        self._out(o, monitor_document(monitor), f"monitor {monitor.name} created: {monitor.cadence} on "
                                                 f"{monitor.policy.slug} from {monitor.start_date}")

    def _list(self, o: dict[str, Any], user) -> None:
        permission_require(user, "monitoring.view_monitor", to="list monitors")
        monitors = list(monitor_list())
        self._out(o, {"monitors": [monitor_document(m) for m in monitors]},
                  "\n".join(f"{m.name} · {m.policy.slug} · {m.cadence}" + (" · PAUSED" if m.is_paused else "")
                            for m in monitors) or "no monitors yet: manage.py monitor create --file PATH")

    def _show(self, o: dict[str, Any], user) -> None:
        permission_require(user, "monitoring.view_monitor", to="see monitors")
        monitor = monitor_get(name=o["name"])
        cycles = list(cycle_list(monitor=monitor))
        self._out(o, {**monitor_document(monitor), "cycles": [cycle_document(c) for c in cycles]},
                  "\n".join([f"{monitor.name} · {monitor.policy.slug} · {monitor.cadence}"
                             + (" · PAUSED" if monitor.is_paused else "")] + [cycle_line(c) for c in cycles]))

    def _pause(self, o: dict[str, Any], user, paused: bool = True) -> None:
        monitor = monitor_pause(monitor=monitor_get(name=o["name"]), paused=paused, acting_user=user)
        self._out(o, monitor_document(monitor), f"monitor {monitor.name} {'paused' if paused else 'resumed'}")

    def _resume(self, o: dict[str, Any], user) -> None:
        self._pause(o, user, paused=False)

    def _run_now(self, o: dict[str, Any], user) -> None:
        cycle, created = monitor_run_now(monitor=monitor_get(name=o["name"]), partition=o["date"], acting_user=user,
                                         enqueue=not o["sync"])
        if o["sync"]:
            cycle_run_to_rest(cycle_id=cycle.pk)
        cycle.refresh_from_db()
        self._out(o, {"created": created, "cycle": cycle_document(cycle)},
                  f"{'created' if created else 'found'} cycle {cycle_line(cycle)}")

    def _backfill(self, o: dict[str, Any], user) -> None:
        made = monitor_backfill(monitor=monitor_get(name=o["name"]), date_from=o["date_from"], date_to=o["date_to"],
                                acting_user=user, enqueue=not o["sync"])
        cycles = made.created + made.existing
        if o["sync"]:
            for cycle in cycles:
                cycle_run_to_rest(cycle_id=cycle.pk)
        for cycle in cycles:
            cycle.refresh_from_db()
        cycles.sort(key=lambda c: c.partition_date)
        self._out(o, {"created": len(made.created), "existing": len(made.existing),
                      "cycles": [cycle_document(c) for c in cycles]},
                  "\n".join([f"{len(made.created)} cycles created, {len(made.existing)} existed"]
                            + [cycle_line(c) for c in cycles]))

    def _ack(self, o: dict[str, Any], user) -> None:
        from monitoring.services.delivery import alert_acknowledge, alert_get

        alert = alert_acknowledge(alert=alert_get(alert_id=o["alert_id"]), reason=o["reason"], acting_user=user)
        self._out(o, {"id": alert.pk, "rule": alert.rule, "monitor": alert.monitor.name,
                      "acknowledged_by": alert.acknowledged_by.get_username(),
                      "acknowledged_at": alert.acknowledged_at.isoformat(), "reason": alert.acknowledge_reason},
                  f"alert {alert.pk} ({alert.rule} on {alert.cycle}) acknowledged by "
                  f"{alert.acknowledged_by.get_username()}: {alert.acknowledge_reason}")
