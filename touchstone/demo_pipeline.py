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

from goldsets.freeze import FreezeRule
from goldsets.models import GoldenSetVersion
from goldsets.services import goldset_version_freeze_request
from goldsets.tasks import freeze_golden_set_version
from labeling.models import LabelingRun, LLMEndpoint, RunStatus, Sample
from labeling.services.content import content_import
from labeling.services.human_labels import human_label_import
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
LABELS_FILE = "convabuse-human-labels.jsonl"
VENDOR = "ConvAbuse annotators"
GOLDEN_SET = "harassment-convabuse"


def _label(annotation: dict) -> str:
    if not annotation["is_abuse"]:
        return "not_harassment"
    types = set(annotation["types"])
    if "sex_harassment" in types:
        return "sexual_harassment"
    return "hate_harassment" if types & HATE_TYPES else "insult"


def demo_files_prepare(workdir: Path) -> tuple[Path, Path]:
    """Write the import file, the simulator's answer key and the human labels file (the
    ConvAbuse annotators' real labels, mapped to the harassment taxonomy); returns the first two."""
    workdir.mkdir(parents=True, exist_ok=True)
    import_path, key_path = workdir / "convabuse-import.jsonl", workdir / "answer-key.jsonl"
    votes: dict[str, Counter[str]] = {}
    with (DATA / "labels.jsonl").open() as handle, (workdir / LABELS_FILE).open("w") as labels_out:
        for line in handle:
            annotation = json.loads(line)
            votes.setdefault(annotation["item_id"], Counter())[_label(annotation)] += 1
            labels_out.write(json.dumps({"external_id": annotation["item_id"], "labeler": annotation["annotator_id"],
                                         "vendor": VENDOR, "label": _label(annotation)}) + "\n")
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


def demo_golden_set(*, log: Callable[[str], None], timeout: float = 600) -> GoldenSetVersion:
    """Import the annotators' labels and freeze (or reuse) the demo golden set on the worker."""
    ops = get_user_model().objects.get(username="ops")
    version = policy_version_get(slug="harassment")
    job = human_label_import(path=Path(settings.STATE_DIR) / "demo" / LABELS_FILE, policy_version=version,
                             content_source=SOURCE, acting_user=ops)
    log(f"human labels (ConvAbuse annotators, real): {job.imported} imported, {job.duplicates} already there, "
        f"{job.rejected} rejected")
    existing = GoldenSetVersion.objects.filter(golden_set__name=GOLDEN_SET, status="frozen").order_by("-number")
    if existing.exists():
        return existing.first()
    frozen = goldset_version_freeze_request(
        name=GOLDEN_SET, policy_version=version, rule=FreezeRule(min_labels=3, rule="majority"),
        description="ConvAbuse user turns with three expert annotations each, gold by strict majority under the "
                    "demo harassment policy.", changelog="demo", acting_user=ops)
    freeze_golden_set_version.delay(frozen.pk)
    log(f"freezing {GOLDEN_SET} on the worker (freeze queue)")
    deadline = time.monotonic() + timeout
    while frozen.status == "building" and time.monotonic() < deadline:
        time.sleep(0.5)
        frozen.refresh_from_db()
    if frozen.status != "frozen":
        raise RuntimeError(f"the demo freeze did not finish: {frozen.status} {frozen.failure_reason}")
    return frozen
