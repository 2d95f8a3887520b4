"""The demo's measurement steps, on top of its pipeline: the demo run as a signal, a simulated
production classifier beside it, both evaluated on the ConvAbuse golden set, and two prompt
templates of the harassment policy compared on it. Each step runs once: a second ``make demo``
reuses what exists and says so."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model

from content.models import Sample
from demo.pipeline import (
    DEMO_AUDIT_SHARE,
    DEMO_MODEL,
    RUN_NAME,
    SAMPLE_NAME,
    SIM_MODELS,
    SOURCE,
    annotations_by_item,
    demo_endpoint,
    demo_policy_version,
)
from evaluation.models import Comparison, Evaluation, Signal, SignalKind, SignalOutputType, SignalVersion
from evaluation.selectors import comparison_list, evaluation_list
from evaluation.services.comparisons import ComparisonOptions, comparison_create
from evaluation.services.evaluations import EvaluationOptions, evaluation_create
from evaluation.services.gates import GateVerdict, publish_gate_verdict
from evaluation.services.runs import signal_version_from_run
from evaluation.services.scores import signal_scores_import
from evaluation.services.signals import signal_create, signal_version_create
from goldsets.item_sets import goldset_version_sample
from goldsets.models import GoldenSetVersion
from policies.models import PolicyVersion, PromptTemplateVersion
from policies.services import (
    policy_publish_gate_set,
    policy_version_create_draft,
    policy_version_record_edit,
    policy_version_submit,
    prompt_version_compile,
)
from prevalence.estimators import ESTIMATORS
from prevalence.models import ANY_VIOLATION, PrevalenceEstimate
from prevalence.services import PrevalenceInvalid, PrevalenceRequest, prevalence_estimate_create
from runs.models import LabelingRun, RunStatus
from runs.services.runs import VoterSpec, labeling_run_create, labeling_run_start
from simulator.classifier import classifier_score

CLASSIFIER = "harassment-classifier-simulated"
CLASSIFIER_SKILL = 0.85  # the simulated classifier's ROC AUC by construction
CLASSIFIER_MAX_FPR = 0.05
TEMPLATE_B = "sectioned_policy"
RUN_B_NAME = f"{RUN_NAME}-{TEMPLATE_B.replace('_', '-')}"


@dataclass
class DemoMeasurement:
    evaluations: list[tuple[str, Evaluation]] = field(default_factory=list)
    comparison: Comparison | None = None
    prevalence: list[PrevalenceEstimate] = field(default_factory=list)
    gate: list[tuple[PolicyVersion, GateVerdict | None]] = field(default_factory=list)
    truth: dict[str, float] = field(default_factory=dict)


def _wait(run: LabelingRun, timeout: float) -> LabelingRun:
    deadline = time.monotonic() + timeout
    while run.status == RunStatus.RUNNING and time.monotonic() < deadline:
        time.sleep(1)
        run.refresh_from_db()
    if run.status != RunStatus.FINISHED:
        raise RuntimeError(f"the demo run {run.name!r} did not finish ({run.status}); see its page /runs/{run.pk}/")
    return run


def _template_run(*, simulator_url: str, ops, log: Callable[[str], None], timeout: float) -> LabelingRun:
    """The demo run again, on the same sample with the same voters, but the prompt compiled from
    the ``sectioned_policy`` template: the second arm of the template comparison."""
    run = LabelingRun.objects.filter(name=RUN_B_NAME).first()
    if run is not None:
        log(f"reused run {run.name!r} ({run.status})")
        return _wait(run, timeout)
    template = PromptTemplateVersion.objects.filter(template__key=TEMPLATE_B).order_by("-number").first()
    if template is None:
        raise RuntimeError(f"the prompt template {TEMPLATE_B!r} is missing; `make clean` and `make demo` seed it")
    prompt, _ = prompt_version_compile(policy_version=demo_policy_version(), template_version=template,
                                       settings=DEMO_MODEL, acting_user=ops)
    endpoint = demo_endpoint(simulator_url=simulator_url, ops=ops, log=log)
    run = labeling_run_create(name=RUN_B_NAME, sample=Sample.objects.get(name=SAMPLE_NAME), prompt_version=prompt,
                              voters=[VoterSpec(endpoint, model) for model in SIM_MODELS],
                              confidence_threshold=0.75, audit_share=DEMO_AUDIT_SHARE, audit_seed=2026, chunk_size=50,
                              acting_user=ops)
    log(f"run {run.name!r} (template {TEMPLATE_B}, same sample and voters): estimate "
        f"{run.estimated_input_tokens} input tokens, cost {run.estimated_cost}")
    return _wait(labeling_run_start(run=run, acting_user=ops), timeout)


def _run_signal_version(run: LabelingRun, ops, log: Callable[[str], None]) -> SignalVersion:
    # The worker makes it when the run finishes; calling the same idempotent service here means
    # the demo does not wait on that task.
    version, added = signal_version_from_run(run=run, acting_user=ops)
    log(f"signal version {version} from run {run.name!r}"
        + (f" ({added} decisions)" if added else " (made by the worker when the run finished)"))
    return version


def _classifier_version(golden: GoldenSetVersion, ops, log: Callable[[str], None]) -> SignalVersion:
    """A production classifier's scores for every ConvAbuse item, SIMULATED: drawn by
    ``simulator.classifier`` around the annotators' majority label at ROC AUC 0.85."""
    signal = Signal.objects.filter(name=CLASSIFIER).first()
    version = signal.versions.order_by("-number").first() if signal else None
    if version is not None and version.scores.exists():
        log(f"reused signal version {version} (SIMULATED production classifier)")
        return version
    if signal is None:
        signal = signal_create(
            name=CLASSIFIER, kind=SignalKind.PRODUCTION_CLASSIFIER, policy=golden.policy_version.policy,
            output_type=SignalOutputType.SCORE, score_label="violating", acting_user=ops,
            description="SIMULATED production classifier: scores drawn by Touchstone's simulator, not a real model.")
    if version is None:
        version = signal_version_create(
            signal=signal, acting_user=ops, policy_version=golden.policy_version,
            notes=f"SIMULATED: binormal scores with ROC AUC {CLASSIFIER_SKILL} against the ConvAbuse annotators' "
                  "majority label (simulator.classifier); no model produced them.")
    path = Path(settings.STATE_DIR) / "demo" / "classifier-scores-simulated.jsonl"
    with path.open("w") as out:
        for external_id, given in sorted(annotations_by_item().items()):
            majority = Counter(label for _, label in given).most_common(1)[0][0]
            score = classifier_score(item_id=external_id, reference_violating=majority != "not_harassment",
                                     skill=CLASSIFIER_SKILL, seed=2026)
            out.write(json.dumps({"source": SOURCE, "external_id": external_id, "score": score}) + "\n")
    job = signal_scores_import(path=path, version=version, acting_user=ops, strict=True)
    log(f"signal version {version}: {job.imported} SIMULATED classifier scores imported")
    return version


def _evaluation(version: SignalVersion, golden: GoldenSetVersion, options: EvaluationOptions, ops,
                log: Callable[[str], None]) -> Evaluation:
    existing = evaluation_list(signal_version=version).filter(golden_set_version=golden).first()
    if existing is not None:
        log(f"reused evaluation {existing.pk} of {version} on {golden}")
        return existing
    evaluation = evaluation_create(signal_version=version, golden_set_version=golden, options=options,
                                   acting_user=ops)
    log(f"evaluation {evaluation.pk}: {version} on {golden}")
    return evaluation


def _comparison(a: SignalVersion, b: SignalVersion, golden: GoldenSetVersion, ops,
                log: Callable[[str], None]) -> Comparison:
    existing = comparison_list().filter(signal_version_a=a, signal_version_b=b, golden_set_version=golden).first()
    if existing is not None:
        log(f"reused comparison {existing.pk} ({b} vs {a})")
        return existing
    comparison = comparison_create(signal_version_a=a, signal_version_b=b, golden_set_version=golden,
                                   options=ComparisonOptions(), acting_user=ops)
    log(f"comparison {comparison.pk}: {b} (template {TEMPLATE_B}) vs {a}, paired on {golden}")
    return comparison


def demo_measurement(*, simulator_url: str, golden: GoldenSetVersion, log: Callable[[str], None],
                     timeout: float = 600) -> DemoMeasurement:
    """Evaluate the demo run and the simulated classifier on the golden set, and compare the
    demo's prompt template with a second one on the same items."""
    ops = get_user_model().objects.get(username="ops")
    result = DemoMeasurement()
    run_a = _wait(LabelingRun.objects.get(name=RUN_NAME), timeout)
    version_a = _run_signal_version(run_a, ops, log)
    classifier = _classifier_version(golden, ops, log)
    result.evaluations.append(("LLM jury (demo run)", _evaluation(version_a, golden, EvaluationOptions(), ops, log)))
    result.evaluations.append((
        "production classifier (SIMULATED)",
        _evaluation(classifier, golden, EvaluationOptions(max_fpr=CLASSIFIER_MAX_FPR), ops, log)))
    run_b = _template_run(simulator_url=simulator_url, ops=ops, log=log, timeout=timeout)
    version_b = _run_signal_version(run_b, ops, log)
    result.comparison = _comparison(version_a, version_b, golden, ops, log)
    result.gate = demo_gate(simulator_url=simulator_url, golden=golden, log=log, timeout=timeout)
    result.prevalence = demo_prevalence(golden=golden, log=log)
    result.truth = prevalence_truth()
    return result


def prevalence_truth() -> dict[str, float]:
    """The share of ConvAbuse items whose annotators' majority label is each label (and any
    violation), over every annotated item: what the demo's estimates aim at."""
    majorities = [Counter(label for _, label in given).most_common(1)[0][0] for given in annotations_by_item().values()]
    shares = {label: count / len(majorities) for label, count in Counter(majorities).items()}
    shares[ANY_VIOLATION] = sum(1 for label in majorities if label != "not_harassment") / len(majorities)
    return shares


def demo_prevalence(*, golden: GoldenSetVersion, log: Callable[[str], None]) -> list[PrevalenceEstimate]:
    """Estimate the harassment prevalence of the ConvAbuse frame from the demo run's LLM labels
    and the human labels of the items it routed to people (every estimator that applies)."""
    ops = get_user_model().objects.get(username="ops")
    run = LabelingRun.objects.get(name=RUN_NAME)
    existing = list(PrevalenceEstimate.objects.filter(run=run).order_by("label", "estimator"))
    if existing:
        log(f"reused {len(existing)} prevalence estimates of run {run.name!r}")
        return existing
    # Some routed items have fewer ConvAbuse annotators than the queues' overlap, so their tasks
    # stay open: they are estimated as missing at random within their routing group, and say so.
    # Each estimator on its own: one whose design a small sample cannot carry (a stratum with no
    # audited item) is reported and skipped, not allowed to stop the demo.
    estimates: list[PrevalenceEstimate] = []
    for estimator in ESTIMATORS:
        try:
            estimates += prevalence_estimate_create(
                sample=run.sample, run=run, request=PrevalenceRequest(estimators=(estimator,), allow_pending=True),
                golden_set_version=golden, acting_user=ops)
        except PrevalenceInvalid as exc:
            log(f"prevalence by {estimator}: not estimated: {exc}")
    pending = estimates[0].n_pending if estimates else 0
    log(f"{len(estimates)} prevalence estimates from run {run.name!r} and its human-reviewed items"
        + (f" ({pending} routed items still without a final human label, treated as missing at random within their "
           "routing group)" if pending else ""))
    return estimates


# The demo's publish gate on harassment: the candidate's F1 on "violating" on the ConvAbuse
# golden set (its point estimate) must reach 0.7.
DEMO_GATE = {"golden_set": "harassment-convabuse", "metric": "f1", "label": "violating", "at_least": 0.7}
# Two candidate versions, each labelling the whole golden set with one simulated voter: a good
# one (sim-strong, accuracy 0.92) whose F1 passes, and a weak one (sim-weak, 0.72) whose fails.
GATE_CANDIDATES = (
    ("demo gate candidate: passes (labelled by sim-strong)", "sim-strong"),
    ("demo gate candidate: fails (labelled by sim-weak)", "sim-weak"),
)


def _gate_candidate(note: str, published: PolicyVersion, author, log: Callable[[str], None]) -> PolicyVersion:
    version = PolicyVersion.objects.filter(policy=published.policy, change_note=note).first()
    if version is not None:
        log(f"reused candidate {version} ({version.get_status_display()}: {note})")
        return version
    draft = policy_version_create_draft(from_version=published, acting_user=author, change_note=note)
    draft.text += "\n\nClarification (demo candidate): quoting abuse in order to report it is not harassment."
    draft.save()
    policy_version_record_edit(version=draft, acting_user=author, changed=["text"])
    version = policy_version_submit(version=draft, acting_user=author)
    log(f"candidate {version} submitted for review by author ({note})")
    return version


def demo_gate(*, simulator_url: str, golden: GoldenSetVersion, log: Callable[[str], None],
              timeout: float = 600) -> list[tuple[PolicyVersion, GateVerdict | None]]:
    """Give harassment a publish gate (unless it has one), and two candidate versions whose
    prompts label the golden set's items (``run create --golden-set``'s census sample), are
    evaluated on it, and get the gate's verdict: one passes, one fails. Neither is published:
    the approver's confirmation page shows each verdict."""
    users = get_user_model().objects
    author, approver, ops = (users.get(username=name) for name in ("author", "approver", "ops"))
    published = golden.policy_version
    policy = published.policy
    if policy.publish_gate:
        log(f"kept the publish gate of {policy.slug} as it is: {policy.publish_gate}")
    else:
        policy = policy_publish_gate_set(policy=policy, gate=DEMO_GATE, acting_user=author)
        log(f"publish gate of {policy.slug}: {DEMO_GATE}")
    sample = goldset_version_sample(version=golden, acting_user=ops)
    template = PromptTemplateVersion.objects.filter(template__key="json_classifier").order_by("-number").first()
    endpoint = demo_endpoint(simulator_url=simulator_url, ops=ops, log=log)
    results = []
    for note, model in GATE_CANDIDATES:
        version = _gate_candidate(note, published, author, log)
        name = f"demo-gate-{policy.slug}-v{version.number}"
        run = LabelingRun.objects.filter(name=name).first()
        if run is None:
            prompt, _ = prompt_version_compile(policy_version=version, template_version=template,
                                               settings=DEMO_MODEL, acting_user=ops)
            run = labeling_run_create(name=name, sample=sample, prompt_version=prompt,
                                      voters=[VoterSpec(endpoint, model)], confidence_threshold=0.75,
                                      audit_share=0.0, chunk_size=100, allow_retired=True, acting_user=ops)
            log(f"run {run.name!r}: candidate {version} on the {sample.size} items of {golden} ({model}), "
                f"estimate {run.estimated_input_tokens} input tokens")
            run = labeling_run_start(run=run, acting_user=ops)
        else:
            log(f"reused run {run.name!r} ({run.status})")
        signal_version = _run_signal_version(_wait(run, timeout), ops, log)
        _evaluation(signal_version, golden, EvaluationOptions(), ops, log)
        results.append((version, publish_gate_verdict(version=version, acting_user=approver)))
    return results
