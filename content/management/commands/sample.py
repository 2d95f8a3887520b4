"""``python manage.py sample create|draw|show ...``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from content.frames import Design
from content.models import Sample
from content.services.frames import FrameContent, sample_draw
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
        p = sub.add_parser("draw", help="draw a sample from a Parquet or CSV frame and import only its members")
        p.add_argument("name")
        p.add_argument("--frame", required=True, metavar="PATH_OR_GLOB",
                       help="a Parquet or CSV file, a glob, a (hive-partitioned) directory, or a URL")
        p.add_argument("--design", required=True, choices=["uniform", "stratified", "score-weighted"])
        p.add_argument("--size", type=int, required=True)
        p.add_argument("--seed", type=int, required=True)
        p.add_argument("--id-column", default="id")
        p.add_argument("--weight-column", help="size measure, e.g. impressions: probability proportional to views")
        p.add_argument("--stratify-by", help="frame column (stratified)")
        p.add_argument("--score-column", help="frame column (score-weighted)")
        p.add_argument("--floor", type=float, default=0.01, help="minimum score for score-weighted")
        p.add_argument("--parts", help="frame columns that are content parts, comma-separated "
                                       "(default: every column named like a part)")
        p.add_argument("--metadata-columns", help="frame columns kept as metadata, comma-separated "
                                                  "(default: every other column)")
        p.add_argument("--content-file", type=Path, help="read the members' content from this content file "
                                                         "(JSONL or CSV), keyed by external_id = the frame's id")
        p.add_argument("--source", help="the items' source (default: the frame's location)")
        p.add_argument("--json", action="store_true", help="print the stored sample as JSON")
        add_user_argument(p)
        p = sub.add_parser("show", help="a sample's design and strata")
        p.add_argument("name")

    @application_errors_as_command_errors
    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "draw":
            return self.draw(options)
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

    def draw(self, options: dict[str, Any]) -> None:
        def columns(value: str | None) -> tuple[str, ...] | None:
            return tuple(c.strip() for c in value.split(",") if c.strip()) if value is not None else None

        actor = acting_user(options["user"])
        design = Design(kind=options["design"].replace("-", "_"), size=options["size"], seed=options["seed"],
                        id_column=options["id_column"], weight_column=options["weight_column"],
                        stratify_by=options["stratify_by"], score_column=options["score_column"],
                        floor=options["floor"])
        content = FrameContent(parts=columns(options["parts"]), metadata=columns(options["metadata_columns"]),
                               content_file=options["content_file"])
        started = time.perf_counter()
        sample = sample_draw(name=options["name"], frame_location=options["frame"], design=design,
                             source=options["source"], content=content, acting_user=actor)
        seconds = time.perf_counter() - started
        if options["json"]:
            self.stdout.write(json.dumps({
                "sample": sample.name, "id": sample.pk, "method": sample.method, "seed": sample.seed,
                "frame": sample.frame_filter, "frame_size": sample.frame_size, "requested_size": sample.requested_size,
                "size": sample.size, "expected_size": sample.expected_size, "parameters": sample.parameters,
                "strata": sample.strata, "seconds": round(seconds, 3)}, indent=2, ensure_ascii=False))
            return
        self.stdout.write(f"sample {sample.name!r}: {sample.get_method_display()}, {sample.size} of "
                          f"{sample.frame_size} rows of {options['frame']}, seed {sample.seed}, "
                          f"{seconds:.1f} s; parameters {sample.parameters}")
        for stratum, info in sorted(sample.strata.items()):
            self.stdout.write(f"  {stratum or '(all)'}: {info['sample']} of {info['frame']}")
