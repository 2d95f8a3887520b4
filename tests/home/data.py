"""A small world for the home page: a running and a finished run, a queue with waiting tasks and a
flagged labeler, a queue with nothing to do, and a frozen golden set."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from content.models import ContentItem
from content.services.sampling import sample_create
from goldsets.freeze import FreezeRule
from goldsets.models import GoldenSetVersion
from goldsets.services import goldset_version_build, goldset_version_freeze_request
from policies.compiler import ModelSettings
from policies.models import PolicyVersion, PromptTemplateVersion
from policies.services import prompt_version_compile
from review.models import HumanLabel, Labeler, ReviewQueue, ReviewTask, Vendor
from runs.models import ItemDecision, Judgement, LabelingRun, LLMCall, LLMEndpoint, RunStatus
from runs.services.runs import VoterSpec, labeling_run_create
from tests.content.users import sampler
from tests.goldsets.conftest import label_items


@dataclass
class HomeWorld:
    running: LabelingRun
    finished: LabelingRun
    waiting_queue: ReviewQueue
    done_queue: ReviewQueue
    version: GoldenSetVersion


def home_world(published: PolicyVersion) -> HomeWorld:
    items = ContentItem.objects.bulk_create(
        ContentItem(source="home", external_id=str(i), parts={"text": f"text {i}"}, content_sha256=f"{i + 10**6:064d}")
        for i in range(10))
    sample = sample_create(name="home-sample", method="uniform", size=10, seed=1, source="home", acting_user=sampler())
    prompt = prompt_version_compile(
        policy_version=published, template_version=PromptTemplateVersion.objects.get(template__key="category_blocks"),
        settings=ModelSettings(model="sim-strong"), acting_user=None)[0]
    endpoint = LLMEndpoint.objects.create(name="sim", base_url="http://127.0.0.1:9/v1", is_simulator=True)
    running = labeling_run_create(name="run-in-progress", sample=sample, prompt_version=prompt,
                                  voters=[VoterSpec(endpoint, "sim-strong"), VoterSpec(endpoint, "sim-weak")])
    finished = labeling_run_create(name="run-finished", sample=sample, prompt_version=prompt,
                                   voters=[VoterSpec(endpoint, "sim-strong")])
    LabelingRun.objects.filter(pk=running.pk).update(status=RunStatus.RUNNING)
    LabelingRun.objects.filter(pk=finished.pk).update(status=RunStatus.FINISHED)
    # running: 5 of 20 judgements, $0.0125 spent, 2 items routed to review
    voter = running.voters.get(position=0)
    Judgement.objects.bulk_create(Judgement(run=running, item=item, voter=voter, status="ok", label="insult")
                                  for item in items[:5])
    LLMCall.objects.bulk_create(LLMCall(run=running, item=item, voter=voter, attempt=1, outcome="ok",
                                        cost=Decimal("0.0025")) for item in items[:5])
    ItemDecision.objects.bulk_create(
        ItemDecision(run=running, item=item, outcome=outcome, reason="agreed")
        for item, outcome in zip(items[:3], ["human_review", "human_review", "auto_accepted"], strict=True))
    voter = finished.voters.get()
    Judgement.objects.bulk_create(Judgement(run=finished, item=item, voter=voter, status="ok", label="insult")
                                  for item in items)

    vendor = Vendor.objects.create(name="Acme BPO")
    waiting = ReviewQueue.objects.create(name="acme", policy_version=published, vendor=vendor, overlap=2)
    for item, status in zip(items[:4], ["new", "open", "open", "complete"], strict=True):
        ReviewTask.objects.create(queue=waiting, item=item, status=status)
    flagged = Labeler.objects.create(vendor=vendor, external_id="ann-flagged", flagged_at=timezone.now(),
                                     flag_reason="accuracy 0.40 on 10 hidden gold items is below 0.70")
    HumanLabel.objects.create(item=items[0], policy_version=published, labeler=flagged, source="label_studio",
                              queue=waiting, label="insult", labeled_at=timezone.now())
    done = ReviewQueue.objects.create(name="done-queue", policy_version=published, vendor=vendor, overlap=2)
    ReviewTask.objects.create(queue=done, item=items[5], status="complete")

    label_items(published, [["insult"] * 3] * 12 + [["not_harassment"] * 3] * 12 + [["insult", "insult", "threat"]] * 6,
                source="gold")
    version = goldset_version_build(version_id=goldset_version_freeze_request(
        name="harassment-gold", policy_version=published, rule=FreezeRule(), changelog="first").pk)
    return HomeWorld(running=LabelingRun.objects.get(pk=running.pk), finished=finished, waiting_queue=waiting,
                     done_queue=done, version=version)
