"""Fixtures of the prevalence tests: role users and a small worked example, a uniform sample of 20
of 40 items (π = 0.5) labelled by a run whose decisions and human labels are written as rows.

Members by position (item order):
- 0-5 routed by rule (disagreement), human labels insult ×3, threat, not_harassment ×2;
- 6-10 audited (reason audit, audit share 0.4): LLM not_harassment; people say insult for 6 and
  not_harassment for 7-10;
- 11-19 auto-accepted: LLM insult for 11, not_harassment for 12-19.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Group

from content.models import ContentItem, Sample
from content.services.sampling import sample_create
from policies.compiler import ModelSettings
from policies.models import PromptTemplateVersion
from policies.services import prompt_version_compile
from review.models import HumanLabel, Labeler, Vendor
from runs.models import ItemDecision, LLMEndpoint
from runs.services.runs import VoterSpec, labeling_run_create
from tests.content.users import sampler

FRAME, SIZE, AUDIT_SHARE = 40, 20, 0.4
HUMAN = {0: "insult", 1: "insult", 2: "insult", 3: "threat", 4: "not_harassment", 5: "not_harassment",
         6: "insult", 7: "not_harassment", 8: "not_harassment", 9: "not_harassment", 10: "not_harassment"}


def _user(django_user_model, username: str, group: str | None):
    user = django_user_model.objects.create_user(username=username, password="pw-" + username, is_staff=True)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def ops(db, django_user_model):
    return _user(django_user_model, "ops", "labeling ops")


@pytest.fixture
def pipeline(db, django_user_model):
    return _user(django_user_model, "pipe", "pipeline")


@pytest.fixture
def writer(db, django_user_model):
    return _user(django_user_model, "writer", "policy author")


def decision_for(position: int) -> tuple[str, str, str]:
    if position <= 5:
        return "human_review", "disagreement", ""
    if position <= 10:
        return "human_review", "audit", "not_harassment"
    return "auto_accepted", "agreed", "insult" if position == 11 else "not_harassment"


def make_run(published, *, name: str = "r1", simulator: bool = True, human: dict[int, str] | None = None,
             sample_name: str = "twenty"):
    """The worked example's run on the sample (created once), with its decisions and human labels."""
    if not ContentItem.objects.filter(source="t").exists():
        ContentItem.objects.bulk_create(
            ContentItem(source="t", external_id=f"i{i:02d}", parts={"text": f"message {i}"}, target_part="text",
                        content_sha256=f"{i:064x}") for i in range(FRAME))
    sample = Sample.objects.filter(name=sample_name).first() or sample_create(
        name=sample_name, method="uniform", size=SIZE, seed=3, source="t", acting_user=sampler())
    endpoint, _ = LLMEndpoint.objects.get_or_create(name="sim" if simulator else "real",
                                                    defaults={"base_url": "http://127.0.0.1:9/v1",
                                                              "is_simulator": simulator})
    prompt, _ = prompt_version_compile(
        policy_version=published, template_version=PromptTemplateVersion.objects.get(template__key="json_classifier"),
        settings=ModelSettings(model="sim-strong", seed=1), acting_user=None)
    run = labeling_run_create(name=name, sample=sample, prompt_version=prompt, voters=[VoterSpec(endpoint, "sim-a")],
                              audit_share=AUDIT_SHARE, acting_user=None)
    members = list(sample.members.order_by("item_id").values_list("item_id", flat=True))
    ItemDecision.objects.bulk_create(
        ItemDecision(run=run, item_id=item_id, outcome=decision_for(i)[0], reason=decision_for(i)[1],
                     label=decision_for(i)[2]) for i, item_id in enumerate(members))
    vendor, _ = Vendor.objects.get_or_create(name="acme")
    labeler, _ = Labeler.objects.get_or_create(vendor=vendor, external_id="l1")
    when = datetime(2026, 11, 1, tzinfo=UTC)
    HumanLabel.objects.bulk_create(
        HumanLabel(item_id=members[i], policy_version=published, labeler=labeler, source="import", label=label,
                   labeled_at=when) for i, label in (HUMAN if human is None else human).items())
    return sample, run, members


@pytest.fixture
def worked(published):
    return make_run(published)
