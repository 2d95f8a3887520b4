"""``python manage.py evaluate SIGNAL@V --golden-set NAME[@N] [--threshold T | --target-precision P |
--max-fpr F] [--slice-by KEY] [--json] --user U``: evaluate a signal version on a frozen golden-set
version, store the immutable evaluation and print its headline metrics (or, with --json, the
stored document)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evaluation.metrics import estimate_text, headline
from evaluation.selectors import signal_version_get_by_ref, signal_version_simulated_voters
from evaluation.services import EvaluationInvalid, EvaluationOptions, evaluation_create
from goldsets.selectors import goldset_version_get
from touchstone.cli import acting_user, add_user_argument, application_errors_as_command_errors


class Command(BaseCommand):
    help = "Evaluate a signal version against a golden-set version and store the evaluation."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("signal", metavar="SIGNAL@V")
        parser.add_argument("--golden-set", required=True, metavar="NAME[@N]", help="default N: the newest frozen")
        choose = parser.add_mutually_exclusive_group()
        choose.add_argument("--threshold", type=float, help="positive when score >= T (default 0.5)")
        choose.add_argument("--target-precision", type=float, metavar="P",
                            help="the threshold with the largest recall at precision >= P")
        choose.add_argument("--max-fpr", type=float, metavar="F",
                            help="the threshold with the largest recall at FPR <= F")
        parser.add_argument("--slice-by", default="", metavar="METADATA_KEY")
        parser.add_argument("--violating-labels", metavar="A,B", help="default: the labels marked as violations")
        parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--json", action="store_true", help="print the stored document")
        add_user_argument(parser)

    @application_errors_as_command_errors
    def handle(self, *args: Any, **o: Any) -> None:
        user = acting_user(o["user"])
        name, _, number = o["golden_set"].partition("@")
        if number and not number.isdigit():
            raise CommandError(f"--golden-set: {o['golden_set']!r}: the version after '@' must be a number")
        golden = goldset_version_get(name=name, number=int(number) if number else None)
        version = signal_version_get_by_ref(o["signal"])
        labels = tuple(x.strip() for x in o["violating_labels"].split(",") if x.strip()) \
            if o["violating_labels"] is not None else None
        options = EvaluationOptions(threshold=o["threshold"], target_precision=o["target_precision"],
                                    max_fpr=o["max_fpr"], slice_by=o["slice_by"], violating_labels=labels,
                                    n_resamples=o["resamples"], seed=o["seed"])
        try:
            evaluation = evaluation_create(signal_version=version, golden_set_version=golden, options=options,
                                           acting_user=user)
        except EvaluationInvalid as exc:
            option = {"n_resamples": "resamples"}.get(exc.extra["field"], exc.extra["field"])
            raise CommandError(f"--{option.replace('_', '-')}: {exc.extra['reason']}") from exc
        doc = evaluation.document
        if o["json"]:
            self.stdout.write(json.dumps({"evaluation": evaluation.pk, "signal_version": str(version),
                                          "golden_set_version": str(golden), "digest": evaluation.golden_set_digest,
                                          "options": evaluation.options, "code_version": evaluation.code_version,
                                          "score_count": evaluation.score_count, **doc}, indent=2))
            return
        coverage, threshold = doc["coverage"], doc["threshold"]
        lines = [f"evaluation {evaluation.pk}: {version} on {golden} (digest {evaluation.golden_set_digest[:12]})",
                 f"coverage: {coverage['scored']} of {coverage['gold_items']} gold items scored, "
                 f"{coverage['unscored']} without a score"
                 + (f" ({', '.join(coverage['unscored_items'][:5])}{'…' if coverage['unscored'] > 5 else ''})"
                    if coverage["unscored"] else ""),
                 "threshold: " + ("+inf (flags nothing)" if threshold["flags_nothing"] else
                                  "n/a" if threshold["value"] is None else f"{threshold['value']:g}")
                 + f" ({threshold['chosen_by']})"]
        simulated = signal_version_simulated_voters(version)
        if simulated:
            lines.append(f"[SIMULATED VOTERS] the signal's labels come from the bundled simulator "
                         f"({', '.join(simulated)}), not a real model")
        lines += [f"  {name}: {estimate_text(e)}" for name, e in headline(doc)]
        lines.append("95 % CIs: Wilson for precision, recall and FPR; percentile bootstrap "
                     f"({evaluation.options['bootstrap']['resamples']} resamples, seed "
                     f"{evaluation.options['bootstrap']['seed']}) for the rest")
        lines.append(f"page: /evaluations/{evaluation.pk}/ · API: /api/v1/evaluations/{evaluation.pk}/")
        self.stdout.write("\n".join(lines))
