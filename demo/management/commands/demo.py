"""``python manage.py demo``: what ``make demo`` runs."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from demo import setup as demo
from demo.measurement import demo_measurement
from demo.monitoring import demo_monitor
from demo.pipeline import demo_golden_set, demo_review, demo_run
from evaluation.comparison import delta_rows, delta_text
from evaluation.metrics import estimate_text, headline
from goldsets.selectors import goldset_version_stats_document
from runs.selectors import labeling_run_progress


class Command(BaseCommand):
    help = "Seed the demo, start Redis, the LLM simulator, a Celery worker and the web server."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--exit-when-ready", action="store_true",
                            help="stop everything once the demo is up (for tests)")

    def handle(self, *args: Any, exit_when_ready: bool = False, **options: Any) -> None:
        say = self.stdout.write
        try:
            demo.database_layout_check()
        except demo.OutdatedDatabase as exc:
            raise CommandError(str(exc)) from exc
        call_command("migrate", interactive=False, verbosity=0)

        def log(message: str) -> None:
            say(f"· {message}")

        users = demo.demo_users_ensure(log)
        versions = demo.demo_policies_publish(log)
        stack = demo.Stack()
        try:
            urls = demo.stack_start(stack, demo.DemoPorts(), log)
            compiled = demo.prompts_compile_on_worker(versions, log)
            run = demo_run(simulator_url=urls["llm"], log=log)
            progress = labeling_run_progress(run=run)
            review = demo_review(log=log)
            golden = demo_golden_set(log=log)
            stats = goldset_version_stats_document(golden)
            measured = demo_measurement(simulator_url=urls["llm"], golden=golden, log=log)
            monitored = demo_monitor(log=log)
            say("")
            say(self.style.SUCCESS("Touchstone demo is up."))
            say(f"  Admin:          {urls['web']}/admin/")
            say(f"  LLM endpoint:   {urls['llm']}  (SIMULATOR: models are sim-*, every answer is simulated)")
            say(f"  Logs:           {urls['logs']}")
            say(f"  Logins (password '{demo.DEMO_PASSWORD}' for each):")
            for username, role, description in users:
                say(f"    {username:<10} {role:<16} {description}")
            say("  Published policies and their prompt versions (compiled on the Celery worker):")
            for version in versions:
                shas = ", ".join(sha[:12] for sha in compiled[str(version)])
                say(f"    {str(version):<18} {version.get_status_display():<10} prompts: {shas}")
            say(f"  Labeling run [SIMULATED VOTERS]: {run.name} is {progress.status}: "
                f"{progress.ok} judgements ok, {progress.failed} failed; decisions "
                + ", ".join(f"{k} {v}" for k, v in sorted(progress.outcomes.items())))
            say(f"  Run page:       {urls['web']}/runs/{run.pk}/")
            say(f"  Label Studio:   {urls['label_studio']}/  (login {demo.DEMO_LABEL_STUDIO.username} / "
                f"{demo.DEMO_LABEL_STUDIO.password}; the labelers in it are SIMULATED, replaying real labels)")
            say(f"  Review queues:  {urls['web']}/queues/")
            for name, counts in review.items():
                say(f"    {name:<18} " + ", ".join(f"{k} {v}" for k, v in counts.items()))
            say(f"  Golden set (real human labels): {golden.golden_set.name} v{golden.number}: "
                f"{golden.item_count} items, digest {golden.digest[:16]}…")
            say("    gold labels: " + ", ".join(f"{k} {v}" for k, v in stats["labels"].items()))
            for key, title in (("krippendorff_alpha", "Krippendorff's alpha"), ("gwet_ac1", "Gwet's AC1"),
                               ("fleiss_kappa", "Fleiss' kappa")):
                value = stats[key]
                say(f"    {title:<21}" + (f"{value['value']:.3f}" if value else "undefined")
                    + (f"  95% CI [{value['ci_low']:.3f}, {value['ci_high']:.3f}]"
                       if value and value["ci_low"] is not None else ""))
            say(f"    page: {urls['web']}/goldsets/{golden.golden_set.name}/v{golden.number}/")
            cli = demo.cli_prefix()
            say(f"    export: {cli} goldset export {golden.golden_set.name} --format parquet --output exports/ "
                "--user ops")
            say(f"    stats:  {cli} goldset stats {golden.golden_set.name} --json")
            say(f"  Measured on {golden.golden_set.name} v{golden.number} (95 % CIs; SIMULATED signals say so):")
            for title, evaluation in measured.evaluations:
                shown = dict(headline(evaluation.document))
                keys = [k for k in shown if k.endswith(": F1") or k in ("ROC AUC",) or k.startswith("recall at FPR")]
                say(f"    {title} = {evaluation.signal_version}: "
                    + "; ".join(f"{k} {estimate_text(shown[k])}" for k in keys))
                say(f"      page: {urls['web']}/evaluations/{evaluation.pk}/")
            if measured.comparison is not None:
                comparison = measured.comparison
                rows = dict(delta_rows(comparison.document))
                f1 = next(k for k in rows if k.endswith("ΔF1"))
                say(f"    prompt templates compared, {comparison.signal_version_b} (sectioned_policy) vs "
                    f"{comparison.signal_version_a} (json_classifier), paired: {f1} {delta_text(rows[f1])}")
                say(f"      page: {urls['web']}/comparisons/{comparison.pk}/")
            for version, verdict in measured.gate:
                if verdict is None:
                    continue
                say(f"    publish gate, {verdict.rule}: candidate {version} "
                    + ("PASSES" if verdict.passed else "FAILS") + f" ({verdict.metric} "
                    + (estimate_text(verdict.candidate_value) if verdict.candidate_value else "not measured")
                    + f"): {verdict.reason}")
                say(f"      approver's confirmation page: {urls['web']}/admin/policies/policyversion/{version.pk}/"
                    "transition/publish/")
            if measured.prevalence:
                first = measured.prevalence[0]
                design = first.design
                say(f"  Prevalence in the ConvAbuse frame (N {design['frame_size']}; sample of {design['size']}, "
                    f"{design['method']}; people reviewed {first.n_human} of its items: every disagreement or "
                    f"low confidence and a {design['audit_share']:.0%} random audit of the rest; 95 % CIs"
                    + ("; LLM labels from SIMULATED voters" if first.simulated else "") + "):")
                by_label: dict[str, list] = {}
                for estimate in measured.prevalence:
                    by_label.setdefault(estimate.label, []).append(estimate)
                for label, rows in sorted(by_label.items(), key=lambda kv: -measured.truth.get(kv[0], 0)):
                    say(f"    {label:<18} truth {measured.truth.get(label, 0):.3f} (all annotators' labels)")
                    say("      " + " · ".join(
                        f"{row.estimator} {row.estimate:.3f} [{row.ci_low:.3f}, {row.ci_high:.3f}]"
                        if row.ci_low is not None else f"{row.estimator} {row.estimate:.3f}" for row in rows))
                say(f"    page: {urls['web']}/prevalence/{first.policy_version.policy.slug}/")
            say(f"    evaluate: {cli} evaluate {measured.evaluations[0][1].signal_version} --golden-set "
                f"{golden.golden_set.name} --user ops")
            _say_monitor(say, monitored, web=urls["web"], cli=cli)
            say(f"  Command line, in any shell (settings from {settings.DEMO_ENV_FILE}; commands that change "
                "something need --user):")
            say(f"    {cli} queue status")
            say(f"    {cli} queue sync acme-bpo")
            say(f"    {cli} queue labelers")
            if exit_when_ready:
                return
            say("Press Ctrl-C to stop every process the demo started.")
            demo.wait_for_interrupt(stack)
        except (RuntimeError, TimeoutError) as exc:
            raise CommandError(str(exc)) from exc
        finally:
            say("stopping…")
            stack.stop()
            say("stopped.")


def _say_monitor(say, monitored, *, web: str, cli: str) -> None:
    """The demo monitor's series: each day's estimate with its CI beside the truth, the alerts."""
    monitor, days = monitored.monitor, monitored.days
    spec = monitor.spec
    say(f"  Monitor {monitor.name} (harassment, daily, {len(days)} partitions {days[0].date} .. {days[-1].date}; "
        f"sample {spec['sample']['size']} a day, {spec['audit']['share']:.0%} audited by people; LLM labels from a "
        "SIMULATED voter, audit labels the ConvAbuse annotators' real ones):")
    say(f"    page: {web}/monitors/{monitor.name}/")
    estimators = spec["estimates"]["estimators"]
    for day in days:
        shown = " · ".join(
            f"{name} {e[0]:.3f} [{e[1]:.3f}, {e[2]:.3f}]" if e[1] is not None else f"{name} {e[0]:.3f}"
            for name, e in ((name, day.estimates.get(name)) for name in estimators) if e is not None)
        alerts = ", ".join(alert.rule for alert in day.alerts)
        say(f"    day {day.number:>2} {day.date}  truth {day.truth:.3f}  {shown or day.state}"
            + (f"  ALERT {alerts}" if alerts else ""))
    say(f"    truth: any violation, {monitored.truth_source}")
    say(f"    alerts fired: {len(monitored.alerts)}"
        + ("; first: " + monitored.alerts[0].message if monitored.alerts else ""))
    say(f"    try: {cli} monitor show {monitor.name} --user ops")
    say(f"         {cli} monitor run-now {monitor.name} --date {days[-1].date} --sync --user ops  "
        "(the cycle is done: nothing is redone)")
