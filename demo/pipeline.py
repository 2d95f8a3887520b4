"""The demo's labeling pipeline on real data: ConvAbuse items → a stratified sample → a run
with three simulated voters → review queues → a golden set. Each step runs once: a second
``make demo`` reuses what exists, says so, and changes nothing a user made."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import zip_longest
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model

from content.models import ContentImport, ContentItem, Sample
from content.services.content import content_import
from content.services.sampling import sample_create
from goldsets.freeze import FreezeRule
from goldsets.models import GoldenSetVersion
from goldsets.services import goldset_version_freeze_request
from policies.compiler import ModelSettings
from policies.models import PolicyVersion, PolicyVersionStatus, PromptTemplateVersion
from policies.services import prompt_version_compile
from review.lsconfig import annotation_result
from review.models import HiddenGoldItem, HumanLabel, Labeler, LabelImport, ReviewQueue, ReviewTask
from review.selectors import vendor_quality
from review.services.human_labels import human_label_import
from review.services.quality import labelers_flag
from review.services.queues import (
    label_studio_client,
    review_queue_create,
    review_queue_push,
    review_queue_status,
    review_queue_sync,
    routed_items,
)
from runs.models import LabelingRun, LLMEndpoint, RunStatus
from runs.services.endpoints import llm_endpoint_create
from runs.services.runs import VoterSpec, labeling_run_create, labeling_run_start
from simulator.engine import text_sha256

DEMO_MODEL = ModelSettings(model="sim-strong", temperature=0.0, max_output_tokens=512, seed=7)
DATA = Path(__file__).resolve().parent.parent / "demo_data" / "convabuse"
HATE_TYPES = {"sexist", "racist", "homophobic", "transphobic", "ableist"}
SOURCE = "convabuse"
SAMPLE_NAME = "demo-convabuse-by-bot"
RUN_NAME = "demo-convabuse-harassment"
SIM_MODELS = ("sim-strong", "sim-medium", "sim-weak")
LABELS_FILE = "convabuse-human-labels.jsonl"
VENDOR = "ConvAbuse annotators"
GOLDEN_SET = "harassment-convabuse"
ENDPOINT = "simulator"
# The random share of would-be auto-accepted items that people review anyway: the audit that
# prevalence estimates (PPI) rest on, besides every item the voters disagreed on.
DEMO_AUDIT_SHARE = 0.2


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


def demo_policy_version() -> PolicyVersion:
    """The harassment version the demo's pipeline works under: its run's, once the run exists
    (a version a user published later does not move the demo's data), else the published one."""
    run = LabelingRun.objects.filter(name=RUN_NAME).select_related("prompt_version__policy_version__policy").first()
    if run is not None:
        return run.prompt_version.policy_version
    version = PolicyVersion.objects.filter(policy__slug="harassment", status=PolicyVersionStatus.PUBLISHED).first()
    if version is None:
        raise RuntimeError("the demo's run needs a published harassment policy version, and none is published: "
                           "publish one in the admin, or `make clean` and `make demo` to seed everything anew")
    return version


def demo_run(*, simulator_url: str, log: Callable[[str], None], sample_size: int = 300,
             timeout: float = 600) -> LabelingRun:
    """Import, sample, and run the demo labeling run, the steps not done yet; waits for the run
    to end."""
    ops = get_user_model().objects.get(username="ops")
    done = ContentImport.objects.filter(source=SOURCE, status=ContentImport.Status.FINISHED).order_by("pk").first()
    if done is not None:
        log(f"content already imported (import #{done.pk}: {done.imported} items from {SOURCE}), skipped")
    else:
        import_path = Path(settings.STATE_DIR) / "demo" / "convabuse-import.jsonl"
        job = content_import(path=import_path, source=SOURCE, acting_user=ops)
        log(f"content import: {job.imported} imported, {job.duplicates} already there, {job.rejected} rejected")
    sample = Sample.objects.filter(name=SAMPLE_NAME).first()
    if sample is not None:
        log(f"reused sample {sample.name!r} ({sample.size} items)")
    else:
        sample = sample_create(name=SAMPLE_NAME, method="stratified", size=sample_size, seed=2026, source=SOURCE,
                               stratify_by="bot", allocation="proportional", acting_user=ops)
        log(f"sample {sample.name!r}: {sample.size} of {sample.frame_size} items, strata "
            + ", ".join(f"{k} {v['sample']}/{v['frame']}" for k, v in sorted(sample.strata.items())))
    endpoint = demo_endpoint(simulator_url=simulator_url, ops=ops, log=log)
    run = LabelingRun.objects.filter(name=RUN_NAME).first()
    if run is not None:
        log(f"reused run {run.name!r} ({run.status})")
    else:
        template = PromptTemplateVersion.objects.filter(template__key="json_classifier").order_by("-number").first()
        prompt, _ = prompt_version_compile(policy_version=demo_policy_version(), template_version=template,
                                           settings=DEMO_MODEL, acting_user=ops)
        run = labeling_run_create(name=RUN_NAME, sample=sample, prompt_version=prompt,
                                  voters=[VoterSpec(endpoint, model) for model in SIM_MODELS],
                                  confidence_threshold=0.75, audit_share=DEMO_AUDIT_SHARE, audit_seed=2026,
                                  chunk_size=50,
                                  acting_user=ops)
        log(f"run {run.name!r}: estimate {run.estimated_input_tokens} input tokens, cost {run.estimated_cost}")
        run = labeling_run_start(run=run, acting_user=ops)
    deadline = time.monotonic() + timeout
    while run.status == RunStatus.RUNNING and time.monotonic() < deadline:
        time.sleep(1)
        run.refresh_from_db()
    return run


def demo_endpoint(*, simulator_url: str, ops, log: Callable[[str], None]) -> LLMEndpoint:
    """The ``simulator`` endpoint: created once, then left as it is (a user may have tuned it)."""
    endpoint = LLMEndpoint.objects.filter(name=ENDPOINT).first()
    if endpoint is None:
        return llm_endpoint_create(name=ENDPOINT, acting_user=ops, base_url=simulator_url, is_simulator=True,
                                   max_concurrency=32, requests_per_minute=60_000, tokens_per_minute=100_000_000,
                                   timeout_seconds=30)
    if endpoint.base_url != simulator_url:
        log(f"endpoint {ENDPOINT!r} points at {endpoint.base_url}, not at this demo's simulator ({simulator_url}): "
            "left as it is; new runs on it need that address to answer")
    else:
        log(f"reused endpoint {ENDPOINT!r} ({endpoint.base_url})")
    return endpoint


def demo_golden_set(*, log: Callable[[str], None], timeout: float = 600) -> GoldenSetVersion:
    """Import the annotators' labels and freeze the demo golden set on the worker, unless done
    already (labels are never imported twice; a frozen version is reused)."""
    ops = get_user_model().objects.get(username="ops")
    version = demo_policy_version()
    source_file = Path(settings.STATE_DIR) / "demo" / LABELS_FILE
    import_file = source_file.with_name("convabuse-human-labels-not-reviewed.jsonl")
    done = LabelImport.objects.filter(policy_version=version, path__endswith=import_file.name,
                                      status=LabelImport.Status.FINISHED).order_by("pk").first()
    if done is not None:
        log(f"labels already imported (import #{done.pk}: {done.imported} ConvAbuse labels under {version}), skipped")
    else:
        # Items reviewed in the Label Studio queues got their annotators' labels there; the rest
        # come in by import, so no item is labelled twice by the same person.
        reviewed = set(ReviewTask.objects.filter(queue__name__in=[name for name, _ in VENDOR_QUEUES])
                       .values_list("item__external_id", flat=True))
        with source_file.open() as lines, import_file.open("w") as out:
            out.writelines(line for line in lines if json.loads(line)["external_id"] not in reviewed)
        job = human_label_import(path=import_file, policy_version=version, content_source=SOURCE, acting_user=ops)
        log(f"human labels (ConvAbuse annotators, real) for the items not reviewed in queues: {job.imported} "
            f"imported, {job.duplicates} already there, {job.rejected} rejected")
    existing = GoldenSetVersion.objects.filter(golden_set__name=GOLDEN_SET, status="frozen").order_by("-number")
    if existing.exists():
        frozen = existing.first()
        log(f"reused golden set {GOLDEN_SET} v{frozen.number} (frozen {frozen.frozen_at:%Y-%m-%d %H:%M} UTC)")
        return frozen
    frozen = goldset_version_freeze_request(
        name=GOLDEN_SET, policy_version=version, rule=FreezeRule(min_labels=3, rule="majority"),
        description="ConvAbuse user turns with three expert annotations each, gold by strict majority under the "
                    "demo harassment policy.", changelog="demo", on_worker=True, acting_user=ops)
    log(f"freezing {GOLDEN_SET} on the worker (freeze queue)")
    deadline = time.monotonic() + timeout
    while frozen.status == "building" and time.monotonic() < deadline:
        time.sleep(0.5)
        frozen.refresh_from_db()
    if frozen.status != "frozen":
        raise RuntimeError(f"the demo freeze did not finish: {frozen.status} {frozen.failure_reason}")
    return frozen


VENDOR_QUEUES = (("acme-bpo", "Acme BPO"), ("globex-bpo", "Globex BPO"))
EXPERT_QUEUE = ("convabuse-experts", "Touchstone experts")
GOLD_SHARE = 0.1
DEMO_GOLD_ITEMS = 200
REPLAY_THREADS = 8


def annotations_by_item() -> dict[str, list[tuple[str, str]]]:
    """ConvAbuse's real annotations: external id → [(annotator, harassment label)]."""
    by_item: dict[str, list[tuple[str, str]]] = {}
    with (DATA / "labels.jsonl").open() as handle:
        for line in handle:
            annotation = json.loads(line)
            by_item.setdefault(annotation["item_id"], []).append((annotation["annotator_id"], _label(annotation)))
    return by_item


def _demo_hidden_gold(version, routed: list[int], annotations: dict[str, list[tuple[str, str]]]) -> int:
    """Known labels for the demo, marked as an admin would (once): items not routed to review
    with at least three ConvAbuse annotations and a strict majority, which is the gold label;
    taken label by label in turn so every label is represented. The simulated labelers replay
    those same annotators, so a dissenter scores as a miss."""
    if HiddenGoldItem.objects.filter(policy_version=version).exists():
        return 0
    majority = {}
    for item, given in annotations.items():
        label, votes = Counter(label for _, label in given).most_common(1)[0]
        if len(given) >= 3 and votes * 2 > len(given):
            majority[item] = label
    by_label: dict[str, list[tuple[int, str]]] = {}
    for pk, external_id in (ContentItem.objects.filter(source=SOURCE, external_id__in=majority)
                            .exclude(pk__in=routed).order_by("external_id").values_list("pk", "external_id")):
        by_label.setdefault(majority[external_id], []).append((pk, majority[external_id]))
    picked = [pair for group in zip_longest(*by_label.values()) for pair in group if pair][:DEMO_GOLD_ITEMS]
    HiddenGoldItem.objects.bulk_create([
        HiddenGoldItem(policy_version=version, item_id=pk, label=label, origin=HiddenGoldItem.Origin.ADMIN,
                       origin_detail="ConvAbuse annotators' majority (demo)") for pk, label in picked])
    return len(picked)


def _simulated_labeler(client, queue: ReviewQueue, name: str) -> int:
    """A Label Studio user for a simulated labeler at the queue's vendor; returns its user id."""
    external_id = f"sim-{name.lower()}"
    labeler = Labeler.objects.filter(vendor=queue.vendor, external_id=external_id).exclude(ls_user_id=None).first()
    if labeler is None:
        user_id = client.user_create(email=f"{external_id}.{queue.name}@simulated.touchstone.local",
                                     name=f"SIMULATED {name} ({queue.vendor.name})")
        labeler, _ = Labeler.objects.update_or_create(vendor=queue.vendor, external_id=external_id,
                                                      defaults={"ls_user_id": user_id})
    return labeler.ls_user_id


def _queue_reuse_or_create(name: str, log: Callable[[str], None], **create) -> tuple[ReviewQueue, bool]:
    """The queue named ``name`` as it is, or a new one; True when it has tasks already (then
    the demo pushes nothing to it and answers nothing in it)."""
    queue = ReviewQueue.objects.filter(name=name).first()
    if queue is None:
        return review_queue_create(name=name, **create), False
    tasks = queue.tasks.count()
    if tasks:
        log(f"reused queue {name} ({tasks} tasks under {queue.policy_version}): nothing pushed or answered; the "
            f"worker syncs Label Studio every 5 minutes (`manage.py queue sync {name}` syncs now)")
    else:
        log(f"reused queue {name} (no tasks yet)")
    return queue, bool(tasks)


def demo_review(*, log: Callable[[str], None]) -> dict[str, dict[str, int]]:
    """Route the run's human-review items into two vendor queues in Label Studio; simulated
    labelers answer there through the API, replaying the ConvAbuse annotators' real labels;
    disagreements go to an expert queue, where a simulated adjudicator answers with the
    annotators' majority. Queues that have tasks already are reused as they are."""
    ops = get_user_model().objects.get(username="ops")
    version = demo_policy_version()
    client = label_studio_client()
    experts, _ = _queue_reuse_or_create(
        EXPERT_QUEUE[0], log, policy_version=version, vendor_name=EXPERT_QUEUE[1], overlap=1, purpose="adjudication",
        acting_user=ops, client=client)
    pairs = [_queue_reuse_or_create(name, log, policy_version=version, vendor_name=vendor, overlap=3,
                                    adjudication_queue=experts.name, disagreement_rule="any_violating_dissent",
                                    gold_share=GOLD_SHARE, acting_user=ops, client=client)
             for name, vendor in VENDOR_QUEUES]
    queues = [queue for queue, _ in pairs]
    fresh = [queue for queue, reused in pairs if not reused]
    if fresh:
        _demo_review_seed(queues=queues, fresh=fresh, experts=experts, version=version, ops=ops, client=client,
                          log=log)
    return {queue.name: review_queue_status(queue=queue) for queue in [*queues, experts]}


def _demo_review_seed(*, queues: list[ReviewQueue], fresh: list[ReviewQueue], experts: ReviewQueue, version, ops,
                      client, log: Callable[[str], None]) -> None:
    """Push the routed items to the ``fresh`` vendor queues and answer them with the simulated
    labelers, then the escalations with the simulated adjudicator."""
    routed = sorted(routed_items(queues[0]))
    annotations = annotations_by_item()
    marked = _demo_hidden_gold(version, routed, annotations)
    if marked:
        log(f"hidden gold: {marked} items with a ConvAbuse majority label, mixed into the vendor queues "
            f"at {GOLD_SHARE:.0%}")
    for index, queue in enumerate(queues):
        if queue not in fresh:
            continue
        result = review_queue_push(queue=queue, item_ids=routed[index::len(queues)], client=client, acting_user=ops)
        log(f"queue {queue.name}: {result.added} new items routed to human review, {result.pushed} tasks pushed "
            f"to Label Studio ({queue.tasks.count()} in all)")
    jobs = []
    for queue in fresh:
        labelled = set(HumanLabel.objects.filter(queue=queue).values_list("item_id", flat=True))
        for task in queue.tasks.exclude(item_id__in=labelled).select_related("item"):
            for annotator, label in annotations.get(task.item.external_id, []):
                seconds = 15 + int(text_sha256(f"{annotator}{task.item_id}")[:4], 16) % 60
                jobs.append((task.ls_task_id, annotation_result(label, target_part="text"),
                             _simulated_labeler(client, queue, annotator), float(seconds)))
    with ThreadPoolExecutor(max_workers=REPLAY_THREADS) as pool:
        list(pool.map(lambda job: client.annotation_create(job[0], job[1], completed_by=job[2], lead_time=job[3]),
                      jobs))
    if jobs:
        log(f"SIMULATED labelers answered {len(jobs)} times in Label Studio (replaying the annotators' real labels)")
    escalated = sum(review_queue_sync(queue=queue, client=client).escalated for queue in fresh)
    majority = {item: Counter(label for _, label in given).most_common(1)[0][0] for item, given in annotations.items()}
    judge = _simulated_labeler(client, experts, "Adjudicator")
    labelled = set(HumanLabel.objects.filter(queue=experts).values_list("item_id", flat=True))
    pending = list(experts.tasks.exclude(item_id__in=labelled).select_related("item"))
    for task in pending:
        client.annotation_create(task.ls_task_id, annotation_result(majority[task.item.external_id],
                                                                    target_part="text"),
                                 completed_by=judge, lead_time=45.0)
    review_queue_sync(queue=experts, client=client)
    log(f"{escalated} disagreements sent to {experts.name}; the SIMULATED adjudicator decided {len(pending)}")
    labelers_flag(client=client)
    for row in vendor_quality():
        log(f"vendor {row['vendor']}: accuracy on {row['gold_items']} hidden gold labels "
            f"{row['accuracy'] or 0:.2f}, κ {row['kappa'] or 0:.2f}, peer agreement {row['peer_agreement'] or 0:.2f}")
    flagged = Labeler.objects.exclude(flagged_at=None).count()
    log(f"{flagged} labelers flagged below the accuracy bar (`manage.py queue labelers` lists them, "
        "`queue pause VENDOR/ID --user ops` pauses one)")
