"""A second ``make demo`` reuses everything and changes nothing a user made (issue 13, item
12): the demo's seeding steps run twice against a real Label Studio, with tasks run eagerly
and the simulator in-process; between the runs a user publishes harassment@2."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from conftest import LABEL_STUDIO_ACCOUNT
from content.models import ContentImport, ContentItem
from demo import devstack
from demo.measurement import CLASSIFIER, demo_measurement
from demo.monitoring import DAYS, MONITOR_NAME, demo_monitor, frames_root
from demo.pipeline import demo_files_prepare, demo_golden_set, demo_review, demo_run
from demo.setup import demo_policies_publish, demo_users_ensure, prompts_compile_on_worker
from evaluation.models import Comparison, Evaluation, Signal, SignalScore, SignalVersion
from evaluation.services.gates import publish_gate_verdict
from goldsets.models import GoldenSetVersion
from monitoring.models import Alert, Cycle, Monitor, MonitorReference
from policies.models import PolicyVersion
from policies.selectors import policy_version_get
from policies.services import (
    PublishGateFailed,
    policy_version_create_draft,
    policy_version_publish,
    policy_version_submit,
)
from prevalence.models import ANY_VIOLATION, PrevalenceEstimate
from review.labelstudio import LabelStudioClient
from review.models import HiddenGoldItem, HumanLabel, LabelImport, ReviewQueue, ReviewTask
from runs.models import Judgement, LabelingRun, LLMEndpoint
from simulator.engine import SimulatorConfig, load_answer_key
from simulator.server import serve_in_thread

pytestmark = pytest.mark.integration


@pytest.fixture
def ls(label_studio, settings, tmp_path) -> Iterator[LabelStudioClient]:
    """A Label Studio of this test's own (the demo's simulated labelers are users in it), from
    the session's initialised data directory."""
    port = devstack.free_port()
    process = devstack.start_label_studio_copy(template_dir=Path(label_studio["template"]),
                                               data_dir=tmp_path / "label-studio", port=port,
                                               account=LABEL_STUDIO_ACCOUNT, log_path=tmp_path / "label-studio.log")
    settings.LABEL_STUDIO_URL, settings.LABEL_STUDIO_API_TOKEN = f"http://127.0.0.1:{port}", label_studio["token"]
    yield LabelStudioClient(settings.LABEL_STUDIO_URL, label_studio["token"])
    process.stop()


@pytest.fixture
def simulator_url(django_db_reset_sequences, ls, eager_celery, settings, tmp_path) -> Iterator[str]:
    # Sequences restart at 1, so item ids, and the runs' seeded audit draws over them, are the
    # same on every run of this test: which items people review does not vary with test order.
    settings.STATE_DIR = tmp_path
    _, answer_key = demo_files_prepare(tmp_path / "demo")
    server, _ = serve_in_thread(SimulatorConfig(answer_key=load_answer_key(answer_key)))
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def seed(simulator_url: str) -> list[str]:
    """What ``manage.py demo`` does once its processes are up, with a 40-item sample (and 30 a
    day for the monitor)."""
    lines: list[str] = []
    demo_users_ensure(lines.append)
    prompts_compile_on_worker(demo_policies_publish(lines.append), lines.append)
    demo_run(simulator_url=simulator_url, log=lines.append, sample_size=40, timeout=120)
    demo_review(log=lines.append)
    golden = demo_golden_set(log=lines.append, timeout=300)
    demo_measurement(simulator_url=simulator_url, golden=golden, log=lines.append, timeout=120)
    demo_monitor(log=lines.append, sample_size=30, timeout=120)
    return lines


def snapshot(ls: LabelStudioClient) -> dict[str, object]:
    projects = {queue.name: list(ls.tasks_with_annotations(queue.ls_project_id)) for queue in ReviewQueue.objects.all()}
    return {
        "policy versions": sorted((str(v), v.status) for v in PolicyVersion.objects.select_related("policy")),
        "content imports": ContentImport.objects.count(), "content items": ContentItem.objects.count(),
        "label imports": LabelImport.objects.count(), "human labels": HumanLabel.objects.count(),
        "review tasks": sorted(ReviewTask.objects.values_list("queue__name", "item_id", "is_gold")),
        "hidden gold": HiddenGoldItem.objects.count(), "runs": LabelingRun.objects.count(),
        "judgements": Judgement.objects.count(), "endpoints": list(LLMEndpoint.objects.values_list("name", "base_url")),
        "golden set versions": list(GoldenSetVersion.objects.values_list("number", "status", "digest")),
        "signal versions": sorted(SignalVersion.objects.values_list("signal__name", "number")),
        "signal scores": SignalScore.objects.count(), "evaluations": Evaluation.objects.count(),
        "comparisons": Comparison.objects.count(), "prevalence estimates": PrevalenceEstimate.objects.count(),
        "Label Studio tasks": {name: len(tasks) for name, tasks in projects.items()},
        "Label Studio annotations": {name: sum(len(t.annotations) for t in tasks) for name, tasks in projects.items()},
        "monitors": Monitor.objects.count(), "cycles": sorted(Cycle.objects.values_list("partition_date", "state")),
        "alerts": Alert.objects.count(), "references": sorted(MonitorReference.objects.values_list(
            "partition_date", "value")),
        "partitions": {p.parent.name: p.read_bytes() for p in frames_root().glob("date=*/part-0.parquet")},
    }


@pytest.mark.timeout(600)  # two seeds of every demo step; over the suite's default when the machine is busy
def test_a_second_demo_reuses_everything_and_keeps_the_version_a_user_published(simulator_url, ls) -> None:
    first = seed(simulator_url)
    assert "imported harassment@1 from harassment.md as author and published it as approver" in first
    assert HumanLabel.objects.filter(queue=None).count() > 10_000 and ReviewTask.objects.exists()
    assert GoldenSetVersion.objects.filter(status="frozen").count() == 1
    # Measurement: the two runs as signal versions, the SIMULATED classifier scored on every
    # ConvAbuse item, an evaluation of each on the golden set and a comparison of the templates.
    classifier = Signal.objects.get(name=CLASSIFIER)
    assert "SIMULATED" in classifier.description and classifier.kind == "production_classifier"
    demo_versions = SignalVersion.objects.exclude(labeling_run__name__startswith="mon-")  # not the monitor's runs
    assert sorted(demo_versions.values_list("signal__name", "number")) == [
        (CLASSIFIER, 1), *(("llm-harassment", n) for n in range(1, 5))]
    assert SignalScore.objects.filter(version__signal=classifier).count() == ContentItem.objects.filter(
        source="convabuse").count()
    # the two runs, the classifier and the gate's two candidates; the template comparison and
    # each candidate's comparison with the published version
    assert Evaluation.objects.count() == 4 and Comparison.objects.count() == 3
    assert all(comparison.document["coverage"]["both"] > 0 for comparison in Comparison.objects.all())
    # The publish gate: harassment@2 passes, harassment@3 fails, neither is published.
    passed = {str(version): verdict.passed for version, verdict in
              ((v, publish_gate_verdict(version=v, acting_user=get_user_model().objects.get(username="approver")))
               for v in PolicyVersion.objects.filter(policy__slug="harassment", status="in_review"))}
    assert passed == {"harassment@2": True, "harassment@3": False}, passed
    # The monitor: 14 partitions, each cycle done, the truth line beside them.
    assert Cycle.objects.filter(monitor__name=MONITOR_NAME, state="done").count() == DAYS
    assert MonitorReference.objects.filter(monitor__name=MONITOR_NAME).count() == DAYS
    estimators = set(PrevalenceEstimate.objects.filter(label=ANY_VIOLATION).values_list("estimator", flat=True))
    assert {"ht", "hajek", "ppi", "ppi++"} <= estimators, estimators

    # A user starts a draft from harassment@1, edits it and has it published in the admin.
    User = get_user_model()
    author, approver = User.objects.get(username="author"), User.objects.get(username="approver")
    draft = policy_version_create_draft(from_version=policy_version_get(slug="harassment", number=1),
                                        acting_user=author)
    draft.text += "\n\nA clarification the user added."
    draft.save()
    submitted = policy_version_submit(version=draft, acting_user=author)
    with pytest.raises(PublishGateFailed):  # the demo's gate: no evaluation of harassment@4 yet
        policy_version_publish(version=submitted, acting_user=approver)
    policy_version_publish(version=submitted, acting_user=approver, override_reason="a wording fix, no new rule")
    before = snapshot(ls)
    assert ("harassment@4", "published") in before["policy versions"]

    second = seed(simulator_url)
    assert snapshot(ls) == before
    label_import = LabelImport.objects.get(path__endswith="-not-reviewed.jsonl")  # not the monitor audit's
    for line in ("reused harassment@4 (published by approver, newer than the demo's file)",
                 "reused self-harm@1 (published, same as the demo's file)",
                 f"labels already imported (import #{label_import.pk}: {label_import.imported} ConvAbuse labels "
                 "under harassment@1), skipped",
                 "reused run 'demo-convabuse-harassment' (finished)",
                 "reused run 'demo-convabuse-harassment-sectioned-policy' (finished)",
                 f"reused signal version {CLASSIFIER}@1 (SIMULATED production classifier)"):
        assert line in second, "\n".join(second)
    assert any(line.startswith("content already imported (import #") for line in second)
    assert f"reused {DAYS} daily partitions" in "\n".join(second)
    assert any(line.startswith(f"reused monitor {MONITOR_NAME} ({DAYS} of {DAYS} cycles done") for line in second)
    assert any(line.startswith("reused queue acme-bpo (") for line in second)
    assert any(line.startswith("reused golden set harassment-convabuse v1 (frozen") for line in second)
    assert sum(line.startswith("reused evaluation ") for line in second) == 4
    assert any(line.startswith("reused comparison ") for line in second)
    assert sum(line.startswith("reused candidate harassment@") for line in second) == 2
    assert any(line.startswith("reused ") and "prevalence estimates" in line for line in second)
    assert not any(line.startswith(("imported ", "content import:", "queue ", "SIMULATED", "freezing"))
                   for line in second), "\n".join(second)
