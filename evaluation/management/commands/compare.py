"""``python manage.py compare SIGNAL@A SIGNAL@B --golden-set NAME[@N] [--threshold T |
--target-precision P | --max-fpr F] [--slice-by KEY] [--json] --user U``: compare two signal
versions on the items of a frozen golden-set version both scored, store the immutable
comparison and print the deltas (B − A) with CIs, McNemar's test and the flips (or, with
--json, the stored document)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evaluation.comparison import delta_rows, delta_text
from evaluation.selectors import signal_version_get_by_ref, signal_version_simulated_voters
from evaluation.services import ComparisonInvalid, ComparisonOptions, comparison_create
from goldsets.selectors import goldset_version_get
from touchstone.cli import acting_user, add_user_argument, application_errors_as_command_errors

OPTION_OF_FIELD = {"n_resamples": "--resamples", "signal_a": "SIGNAL@A", "signal_b": "SIGNAL@B"}


class Command(BaseCommand):
    help = "Compare two signal versions on a golden-set version, paired, and store the comparison."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("signal_a", metavar="SIGNAL@A", help="the old version")
        parser.add_argument("signal_b", metavar="SIGNAL@B", help="the new version (differences are B − A)")
        parser.add_argument("--golden-set", required=True, metavar="NAME[@N]", help="default N: the newest frozen")
        choose = parser.add_mutually_exclusive_group()
        choose.add_argument("--threshold", type=float, help="positive when score >= T (default 0.5), both signals")
        choose.add_argument("--target-precision", type=float, metavar="P",
                            help="each score signal at its threshold with the largest recall at precision >= P")
        choose.add_argument("--max-fpr", type=float, metavar="F",
                            help="each at its threshold with the largest recall at FPR <= F; Δrecall@FPR's F")
        parser.add_argument("--slice-by", default="", metavar="METADATA_KEY")
        parser.add_argument("--resamples", type=int, default=1000, help="paired bootstrap resamples (default 1000)")
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
        a, b = signal_version_get_by_ref(o["signal_a"]), signal_version_get_by_ref(o["signal_b"])
        options = ComparisonOptions(threshold=o["threshold"], target_precision=o["target_precision"],
                                    max_fpr=o["max_fpr"], slice_by=o["slice_by"], n_resamples=o["resamples"],
                                    seed=o["seed"])
        try:
            comparison = comparison_create(signal_version_a=a, signal_version_b=b, golden_set_version=golden,
                                           options=options, acting_user=user)
        except ComparisonInvalid as exc:
            field = exc.extra["field"]
            option = OPTION_OF_FIELD.get(field, "--" + field.replace("_", "-"))
            raise CommandError(f"{option}: {exc.extra['reason']}") from exc
        doc = comparison.document
        if o["json"]:
            self.stdout.write(json.dumps({"comparison": comparison.pk, "signal_version_a": str(a),
                                          "signal_version_b": str(b), "golden_set_version": str(golden),
                                          "digest": comparison.golden_set_digest, "options": comparison.options,
                                          "code_version": comparison.code_version,
                                          "score_counts": {"a": comparison.score_count_a,
                                                           "b": comparison.score_count_b}, **doc}, indent=2))
            return
        self.stdout.write("\n".join(_lines(comparison, doc, a, b, golden)))


def _lines(comparison: Any, doc: dict, a: Any, b: Any, golden: Any) -> list[str]:
    coverage, m, flips = doc["coverage"], doc["mcnemar"], doc["flips"]
    lines = [f"comparison {comparison.pk}: {b} (B) vs {a} (A) on {golden} "
             f"(digest {comparison.golden_set_digest[:12]})",
             f"items: {coverage['both']} of {coverage['gold_items']} gold items scored by both; left out: "
             f"{coverage['only_a']} scored only by A, {coverage['only_b']} only by B, {coverage['neither']} by neither"]
    for side, version in (("A", a), ("B", b)):
        t = doc["thresholds"][side.lower()]
        value = ("none " if doc["kinds"][side.lower()] == "label" else
                 "+inf (flags nothing) " if t["flags_nothing"] else f"{t['value']:g} ")
        simulated = signal_version_simulated_voters(version)
        lines.append(f"threshold {side}: {value}({t['chosen_by']})"
                     + (f"  [SIMULATED VOTERS: {', '.join(simulated)}]" if simulated else ""))
    lines += [f"  {name}: {delta_text(d)}" for name, d in delta_rows(doc)]
    lines.append(f"McNemar (exact, correct = {doc['correctness']}): b = {m['b']} (A right, B wrong), "
                 f"c = {m['c']} (A wrong, B right), p = {m['p_value']:.4g}")
    lines.append(f"flips: {flips['right_to_wrong']['count']} right→wrong, "
                 f"{flips['wrong_to_right']['count']} wrong→right")
    lines.append(f"95 % CIs: paired percentile bootstrap ({comparison.options['bootstrap']['resamples']} resamples, "
                 f"seed {comparison.options['bootstrap']['seed']}), B − A")
    lines.append(f"page: /comparisons/{comparison.pk}/ · API: /api/v1/comparisons/{comparison.pk}/")
    return lines
