"""``python manage.py prevalence estimate --sample NAME --run RUN [--estimator E ...] [--label L |
--any-violation] [--golden-set NAME[@N]] [--alpha A] [--allow-pending] [--json] --user U``,
``prevalence list [--policy SLUG] [--json]``, ``prevalence show ID [--json]``."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from goldsets.selectors import goldset_version_get
from prevalence.documents import estimate_document, estimate_line
from prevalence.estimators import ESTIMATORS
from prevalence.models import ANY_VIOLATION
from prevalence.selectors import prevalence_estimate_get, prevalence_estimate_list, run_simulated_voters, sample_get
from prevalence.services import PrevalenceInvalid, PrevalenceRequest, prevalence_estimate_create
from runs.selectors import labeling_run_get
from touchstone.cli import acting_user, add_user_argument, application_errors_as_command_errors

OPTION = {"pending": "allow-pending", "label": "label", "estimator": "estimator", "alpha": "alpha",
          "golden_set": "golden-set", "run": "run", "labels": "run"}


class Command(BaseCommand):
    help = "Estimate the prevalence of a policy's labels from a labeling run on a sample; list and show estimates."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        p = sub.add_parser("estimate", help="compute and store estimates (default: every estimator and label)")
        p.add_argument("--sample", required=True, metavar="NAME")
        p.add_argument("--run", required=True, metavar="RUN", help="the labeling run (name or id) on the sample")
        p.add_argument("--estimator", action="append", choices=ESTIMATORS, help="repeatable; default: all that apply")
        which = p.add_mutually_exclusive_group()
        which.add_argument("--label", action="append", metavar="L", help="repeatable; default: every label")
        which.add_argument("--any-violation", action="store_true", help="the share with any violating label")
        p.add_argument("--golden-set", metavar="NAME[@N]", help="check the LLM labels against this golden set")
        p.add_argument("--alpha", type=float, default=0.05, help="1 − confidence level (default 0.05)")
        p.add_argument("--allow-pending", action="store_true",
                       help="estimate although some items have no label yet (missing at random within their stratum)")
        p.add_argument("--json", action="store_true")
        add_user_argument(p)
        p = sub.add_parser("list", help="stored estimates, newest first")
        p.add_argument("--policy", metavar="SLUG")
        p.add_argument("--limit", type=int, default=50)
        p.add_argument("--json", action="store_true")
        p = sub.add_parser("show", help="one stored estimate")
        p.add_argument("id", type=int)
        p.add_argument("--json", action="store_true")

    @application_errors_as_command_errors
    def handle(self, *args: Any, **o: Any) -> None:
        getattr(self, "_" + o["action"])(o)

    def _estimate(self, o: dict[str, Any]) -> None:
        user = acting_user(o["user"])
        golden = None
        if o["golden_set"]:
            name, _, number = o["golden_set"].partition("@")
            if number and not number.isdigit():
                raise CommandError(f"--golden-set: {o['golden_set']!r}: the version after '@' must be a number")
            golden = goldset_version_get(name=name, number=int(number) if number else None)
        run = labeling_run_get(name_or_id=o["run"])
        labels = (ANY_VIOLATION,) if o["any_violation"] else tuple(o["label"]) if o["label"] else None
        request = PrevalenceRequest(estimators=tuple(o["estimator"]) if o["estimator"] else None, labels=labels,
                                    alpha=o["alpha"], allow_pending=o["allow_pending"])
        try:
            rows = prevalence_estimate_create(sample=sample_get(name=o["sample"]), run=run, request=request,
                                              golden_set_version=golden, acting_user=user)
        except PrevalenceInvalid as exc:
            raise CommandError(f"--{OPTION.get(exc.extra['field'], exc.extra['field'])}: {exc.extra['reason']}") \
                from exc
        if o["json"]:
            self.stdout.write(json.dumps({"estimates": [estimate_document(r) for r in rows]}, indent=2))
            return
        lines = [f"{len(rows)} estimates of {run.prompt_version.policy_version} from run {run.name} on sample "
                 f"{o['sample']} ({1 - o['alpha']:.0%} CIs)"]
        simulated = run_simulated_voters(run=run)
        if simulated:
            lines.append(f"[SIMULATED VOTERS] the LLM labels come from the bundled simulator ({', '.join(simulated)}),"
                         " not a real model")
        if rows and rows[0].n_pending:
            lines.append(f"{rows[0].n_pending} items without a label were treated as missing at random within "
                         "their stratum")
        lines += ["  " + estimate_line(r) for r in rows]
        if rows:
            lines.append(f"page: /prevalence/{rows[0].policy_version.policy.slug}/")
        self.stdout.write("\n".join(lines))

    def _list(self, o: dict[str, Any]) -> None:
        rows = list(prevalence_estimate_list(policy_slug=o["policy"])[:max(o["limit"], 0)])
        if o["json"]:
            self.stdout.write(json.dumps({"estimates": [estimate_document(r) for r in rows]}, indent=2))
            return
        if not rows:
            self.stdout.write("no prevalence estimates yet: manage.py prevalence estimate --sample NAME --run RUN")
            return
        self.stdout.write("\n".join(f"{estimate_line(r)} · {r.policy_version} · run {r.run.name} · "
                                    f"{r.created_at:%Y-%m-%d %H:%M}" + (" · SIMULATED" if r.simulated else "")
                                    for r in rows))

    def _show(self, o: dict[str, Any]) -> None:
        estimate = prevalence_estimate_get(estimate_id=o["id"])
        document = estimate_document(estimate)
        if o["json"]:
            self.stdout.write(json.dumps(document, indent=2))
            return
        lines = [estimate_line(estimate), f"policy version: {estimate.policy_version} · sample {estimate.sample.name} "
                 f"· run {estimate.run.name}" + (" · SIMULATED VOTERS" if estimate.simulated else ""),
                 f"interval: {estimate.convention} (alpha {estimate.alpha:g})"]
        audit = estimate.agreement.get("audit") or {}
        if audit.get("n"):
            lines.append(f"LLM vs people on {audit['n']} audited items: {audit['agreement']:.1%} agree")
        for row in estimate.strata:
            lines.append(f"  stratum {row['stratum'] or '(all)'}: {row['estimate']:.4f} · n {row['n']}, "
                         f"{row['n_human']} human")
        lines.append(f"page: /prevalence/estimates/{estimate.pk}/")
        self.stdout.write("\n".join(lines))
