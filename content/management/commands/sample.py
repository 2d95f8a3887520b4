"""``python manage.py sample create|show ...``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from content.models import Sample
from content.services.sampling import sample_create
from touchstone.cli import acting_user, add_user_argument, application_errors_as_command_errors


def metadata_filter(pairs: list[str]) -> dict[str, str]:
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"--where {pair!r}: use KEY=VALUE")
        result[key] = value
    return result


class Command(BaseCommand):
    help = "Draw probability samples of content items."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        p = sub.add_parser("create", help="draw and store a sample")
        p.add_argument("name")
        p.add_argument("--method", required=True, choices=["uniform", "stratified", "score-weighted"])
        p.add_argument("--size", type=int, required=True)
        p.add_argument("--seed", type=int, required=True)
        p.add_argument("--source", help="only items of this source")
        p.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                       help="only items whose metadata KEY equals VALUE (repeatable)")
        p.add_argument("--stratify-by", help="metadata key (stratified)")
        p.add_argument("--allocation", default="proportional", choices=["proportional", "equal", "neyman"])
        p.add_argument("--score-signal", help="classifier score name (score-weighted; Neyman SDs)")
        p.add_argument("--floor", type=float, default=0.01, help="minimum size for score-weighted")
        add_user_argument(p)
        p = sub.add_parser("show", help="a sample's design and strata")
        p.add_argument("name")

    @application_errors_as_command_errors
    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "create":
            sample = sample_create(
                name=options["name"], method=options["method"].replace("-", "_"), size=options["size"],
                seed=options["seed"], source=options["source"], metadata_filter=metadata_filter(options["where"]),
                stratify_by=options["stratify_by"], allocation=options["allocation"],
                score_signal=options["score_signal"], floor=options["floor"],
                acting_user=acting_user(options["user"]))
        else:
            sample = Sample.objects.filter(name=options["name"]).first()
            if sample is None:
                raise CommandError(f"no sample named {options['name']!r}")
        self.stdout.write(f"sample {sample.name!r}: {sample.get_method_display()}, {sample.size} of "
                          f"{sample.frame_size} items, seed {sample.seed}, parameters {sample.parameters}")
        for stratum, info in sorted(sample.strata.items()):
            self.stdout.write(f"  {stratum or '(all)'}: {info['sample']} of {info['frame']}")
