"""Reads for prevalence: the inputs of an estimate (the sample's members, the run's decisions, the
final human label per item) and the stored estimates."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import QuerySet

from content.models import Sample
from goldsets.freeze import FreezeRule, decide_gold
from goldsets.models import GoldenSetVersion
from goldsets.selectors import goldset_version_gold_rows
from policies.models import PolicyVersion
from prevalence.models import PrevalenceEstimate
from review.models import HumanLabelRole
from review.selectors import human_labels_by_item, review_task_open_item_ids
from runs.models import LabelingRun
from runs.selectors import item_decisions_under_policy_version
from touchstone.errors import NotFound

# The final human label of an item: the adjudicated label, else the majority of its valid review
# labels (the freeze's rule with one label enough), as goldsets.freeze.decide_gold decides it.
FINAL_LABEL_RULE = FreezeRule(min_labels=1, rule="majority")
CHUNK = 10_000


@dataclass(frozen=True)
class MemberRow:
    item_id: int
    stratum: str
    inclusion_probability: float


@dataclass(frozen=True)
class HumanLabels:
    final: dict[int, str]  # item id -> final human label
    pending: set[int]  # routed items whose task is open, or whose labels have no majority yet


def sample_member_rows(*, sample: Sample) -> list[MemberRow]:
    """The sample's members with their stratum and inclusion probability, in item order."""
    return [MemberRow(*row) for row in sample.members.order_by("item_id").values_list(
        "item_id", "stratum", "inclusion_probability").iterator(chunk_size=10_000)]


def run_decisions(*, run: LabelingRun, item_ids: Iterable[int]) -> dict[int, tuple[str, str, str]]:
    """item id -> (outcome, reason, LLM label) of ``run``'s decisions on ``item_ids``."""
    wanted = set(item_ids)
    # Not narrowed by item ids in SQL: a large sample would pass SQLite's limit on parameters.
    return {row.item_id: (row.outcome, row.reason, row.label)
            for row in item_decisions_under_policy_version(policy_version_id=run.prompt_version.policy_version_id)
            if row.run_id == run.pk and row.item_id in wanted}


def run_simulated_voters(*, run: LabelingRun) -> list[str]:
    """The run's voters that are the bundled simulator ("model@endpoint")."""
    return [f"{model}@{endpoint}" for model, endpoint in run.voters.filter(endpoint__is_simulator=True)
            .order_by("position").values_list("model", "endpoint__name")]


def final_human_labels(*, policy_version_id: int, item_ids: Iterable[int], taxonomy: set[str]) -> HumanLabels:
    """The final human label of each of ``item_ids`` under the policy version (``FINAL_LABEL_RULE``;
    valid labels in the taxonomy only). An item with an open review or adjudication task, or with
    labels but no majority and no adjudication, is pending."""
    wanted = set(item_ids)
    ordered = sorted(wanted)
    open_tasks: set[int] = set()
    for start in range(0, len(ordered), CHUNK):  # SQLite's limit on parameters
        open_tasks |= review_task_open_item_ids(policy_version_id=policy_version_id,
                                                item_ids=ordered[start:start + CHUNK])
    final, pending = {}, set()
    for item_id, rows in human_labels_by_item(policy_version_id=policy_version_id):
        if item_id not in wanted:
            continue
        valid = [r for r in rows if r.is_valid and r.label in taxonomy]
        review = [r.label for r in valid if r.role == HumanLabelRole.REVIEW]
        adjudicated = next((r.label for r in valid if r.role == HumanLabelRole.ADJUDICATION), None)
        decision = decide_gold(review, adjudicated, FINAL_LABEL_RULE)
        if decision.gold_label is not None and (item_id not in open_tasks or adjudicated is not None):
            final[item_id] = decision.gold_label
        elif valid:
            pending.add(item_id)
    return HumanLabels(final=final, pending=pending | (open_tasks - set(final)))


def golden_labels(*, version: GoldenSetVersion, item_ids: Iterable[int]) -> dict[int, str]:
    """item id -> gold label for the golden-set version's items among ``item_ids``."""
    wanted = set(item_ids)
    return {row.item_id: row.gold_label for row in goldset_version_gold_rows(version=version)
            if row.item_id in wanted}


def prevalence_estimate_list(*, policy_slug: str | None = None) -> QuerySet[PrevalenceEstimate]:
    """Estimates, newest first, with their policy version, sample, run and creator (one query)."""
    estimates = PrevalenceEstimate.objects.select_related(
        "policy_version__policy", "sample", "run", "golden_set_version__golden_set", "created_by")
    if policy_slug is not None:
        estimates = estimates.filter(policy_version__policy__slug=policy_slug)
    return estimates.order_by("-created_at", "-pk")


def prevalence_estimate_get(*, estimate_id: int) -> PrevalenceEstimate:
    """One estimate. Raises NotFound."""
    estimate = prevalence_estimate_list().filter(pk=estimate_id).first()
    if estimate is None:
        raise NotFound(f"No prevalence estimate {estimate_id}.")
    return estimate


@dataclass
class PolicyPrevalence:
    """The policy's newest estimates: the policy version and the (sample, run) of its newest
    estimate, and in it the latest estimate of each (label, estimator)."""

    policy_version: PolicyVersion | None
    estimates: list[PrevalenceEstimate]


def policy_prevalence(*, policy_slug: str) -> PolicyPrevalence:
    """For the policy's page (two queries). Raises NotFound when there is no such policy."""
    if not PolicyVersion.objects.filter(policy__slug=policy_slug).exists():
        raise NotFound(f"No policy {policy_slug!r}.")
    rows = list(prevalence_estimate_list(policy_slug=policy_slug)[:2000])
    if not rows:
        return PolicyPrevalence(None, [])
    newest = rows[0]
    latest: dict[tuple[str, str], PrevalenceEstimate] = {}
    for row in rows:
        if (row.policy_version_id, row.sample_id, row.run_id) != (newest.policy_version_id, newest.sample_id,
                                                                 newest.run_id):
            continue
        latest.setdefault((row.label, row.estimator), row)
    return PolicyPrevalence(newest.policy_version, list(latest.values()))


def sample_get(*, name: str) -> Sample:
    """A sample by name (content has no selector for it). Raises NotFound."""
    sample = Sample.objects.filter(name=name).first()
    if sample is None:
        raise NotFound(f"No sample {name!r}.")
    return sample
