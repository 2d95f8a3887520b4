"""``python manage.py gate check POLICY[@VERSION] [--json] --user U`` and ``gate show POLICY
[--json]``: a policy's publish gate and its verdict on a version (default: the newest version in
review, else the newest): the metric, the candidate's value with its CI, the published
version's, Δ with its CI, the rule, pass or fail and why. Exit status 0 on pass, 1 on fail."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from evaluation.services.gates import delta_line, estimate_line, publish_gate_check
from policies.models import PolicyVersionStatus
from policies.selectors import policy_publish_gate, policy_version_get_by_ref
from touchstone.cli import acting_user, add_user_argument, application_errors_as_command_errors


class Command(BaseCommand):
    help = "Show a policy's publish gate, or check a version against it."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        p = sub.add_parser("check", help="the gate's verdict on a version")
        p.add_argument("ref", metavar="POLICY[@VERSION]")
        p.add_argument("--json", action="store_true")
        add_user_argument(p)
        p = sub.add_parser("show", help="the policy's gate")
        p.add_argument("ref", metavar="POLICY")
        p.add_argument("--json", action="store_true")

    @application_errors_as_command_errors
    def handle(self, *args: Any, **o: Any) -> None:
        version = policy_version_get_by_ref(o["ref"])
        if o["action"] == "show":
            gate = policy_publish_gate(policy=version.policy)
            if o["json"]:
                self.stdout.write(json.dumps({"policy": version.policy.slug,
                                              "publish_gate": gate.as_json() if gate else None}, indent=2))
            elif gate is None:
                self.stdout.write(f"{version.policy.slug}: no publish gate (versions publish without one)")
            else:
                self.stdout.write(f"{version.policy.slug}: publish gate on golden set {gate.golden_set_ref}\n"
                                  f"  metric: {gate.metric_text}\n  rule:   {gate.rule_text}")
            return
        if "@" not in o["ref"]:
            version = version.policy.versions.filter(status=PolicyVersionStatus.IN_REVIEW).order_by(
                "-number").first() or version
        verdict = publish_gate_check(version=version, acting_user=acting_user(o["user"]))
        if verdict is None:
            self.stdout.write(json.dumps({"policy": version.policy.slug, "version": str(version), "publish_gate": None})
                              if o["json"] else f"{version.policy.slug}: no publish gate; {version} needs none")
            return
        if o["json"]:
            self.stdout.write(json.dumps(verdict.as_json(), indent=2))
        else:
            self.stdout.write("\n".join(_lines(verdict)))
        if not verdict.passed:
            raise SystemExit(1)


def _lines(v: Any) -> list[str]:
    lines = [f"publish gate of {v.policy} on {v.candidate}: {'PASS' if v.passed else 'FAIL'}",
             f"  golden set: {v.golden_set_version or '—'}", f"  metric:     {v.metric}", f"  rule:       {v.rule}"]
    if v.candidate_evaluation is not None:
        lines.append(f"  candidate:  {estimate_line(v.candidate_value)}  ({v.candidate_signal_version}, "
                     f"/evaluations/{v.candidate_evaluation}/)")
    if v.published:
        published = (f"{estimate_line(v.published_value)}  ({v.published_signal_version}, "
                     f"/evaluations/{v.published_evaluation}/)" if v.published_evaluation else "no evaluation")
        lines.append(f"  published:  {v.published}: {published}")
    if v.comparison is not None:
        lines.append(f"  Δ (candidate − published, paired bootstrap 95 %): {delta_line(v.delta)}  "
                     f"(/comparisons/{v.comparison}/)")
    lines += [f"  missing:    {m}" for m in v.missing]
    lines.append(f"  verdict:    {'PASS' if v.passed else 'FAIL'}: {v.reason}")
    return lines
