"""The demo's labeling pipeline on real data: ConvAbuse items → a stratified sample → a run
with three simulated voters. Idempotent: what exists is reused."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model

from labeling.models import LabelingRun, LLMEndpoint, RunStatus, Sample
from labeling.services.content import content_import
from labeling.services.runs import VoterSpec, labeling_run_create, labeling_run_start
from labeling.services.sampling import sample_create
from labeling.simulator.engine import text_sha256
from policies.models import PromptTemplateVersion
from policies.selectors import policy_version_get
from policies.services import prompt_version_compile
from touchstone.demo import DEMO_MODEL

DATA = Path(__file__).resolve().parent.parent / "demo_data" / "convabuse"
HATE_TYPES = {"sexist", "racist", "homophobic", "transphobic", "ableist"}
SOURCE = "convabuse"
SAMPLE_NAME = "demo-convabuse-by-bot"
RUN_NAME = "demo-convabuse-harassment"
SIM_MODELS = ("sim-strong", "sim-medium", "sim-weak")


def _label(annotation: dict) -> str:
    if not annotation["is_abuse"]:
        return "not_harassment"
    types = set(annotation["types"])
    if "sex_harassment" in types:
        return "sexual_harassment"
    return "hate_harassment" if types & HATE_TYPES else "insult"


def demo_files_prepare(workdir: Path) -> tuple[Path, Path]:
    """Write the import file and the simulator's answer key; returns their paths."""
    workdir.mkdir(parents=True, exist_ok=True)
    import_path, key_path = workdir / "convabuse-import.jsonl", workdir / "answer-key.jsonl"
    votes: dict[str, Counter[str]] = {}
    with (DATA / "labels.jsonl").open() as handle:
        for line in handle:
            annotation = json.loads(line)
            votes.setdefault(annotation["item_id"], Counter())[_label(annotation)] += 1
    with (DATA / "items.jsonl").open() as source, import_path.open("w") as out, key_path.open("w") as key:
        for line in source:
            item = json.loads(line)
            out.write(json.dumps({
                "external_id": item["id"], "components": item["components"], "target": item["target_component"],
                "metadata": {"bot": item["bot"], "split": item["split"], "conv_id": item["conv_id"]}}) + "\n")
            if item["id"] in votes:
                label = votes[item["id"]].most_common(1)[0][0]
                key.write(json.dumps({"sha256": text_sha256(item["components"][item["target_component"]]),
                                      "label": label}) + "\n")
    return import_path, key_path


def demo_run(*, simulator_url: str, log: Callable[[str], None], sample_size: int = 300,
             timeout: float = 600) -> LabelingRun:
    """Import, sample, and run (or reuse) the demo labeling run; waits for it to end."""
    ops = get_user_model().objects.get(username="ops")
    import_path = Path(settings.STATE_DIR) / "demo" / "convabuse-import.jsonl"
    job = content_import(path=import_path, source=SOURCE, acting_user=ops)
    log(f"content import: {job.imported} imported, {job.duplicates} already there, {job.rejected} rejected")
    sample = Sample.objects.filter(name=SAMPLE_NAME).first() or sample_create(
        name=SAMPLE_NAME, method="stratified", size=sample_size, seed=2026, source=SOURCE, stratify_by="bot",
        allocation="proportional", acting_user=ops)
    log(f"sample {sample.name!r}: {sample.size} of {sample.frame_size} items, strata "
        + ", ".join(f"{k} {v['sample']}/{v['frame']}" for k, v in sorted(sample.strata.items())))
    endpoint, _ = LLMEndpoint.objects.update_or_create(
        name="simulator", defaults={"base_url": simulator_url, "is_simulator": True, "max_concurrency": 32,
                                    "requests_per_minute": 60_000, "tokens_per_minute": 100_000_000,
                                    "timeout_seconds": 30})
    run = LabelingRun.objects.filter(name=RUN_NAME).first()
    if run is None:
        template = PromptTemplateVersion.objects.filter(template__key="json_classifier").order_by("-number").first()
        prompt, _ = prompt_version_compile(policy_version=policy_version_get(slug="harassment"),
                                           template_version=template, settings=DEMO_MODEL, acting_user=ops)
        run = labeling_run_create(name=RUN_NAME, sample=sample, prompt_version=prompt,
                                  voters=[VoterSpec(endpoint, model) for model in SIM_MODELS],
                                  confidence_threshold=0.75, audit_share=0.05, audit_seed=2026, chunk_size=50,
                                  acting_user=ops)
        log(f"run {run.name!r}: estimate {run.estimated_input_tokens} input tokens, cost {run.estimated_cost}")
        run = labeling_run_start(run=run, acting_user=ops)
    deadline = time.monotonic() + timeout
    while run.status == RunStatus.RUNNING and time.monotonic() < deadline:
        time.sleep(1)
        run.refresh_from_db()
    return run
