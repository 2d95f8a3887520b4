"""prevalence_estimate_create on the worked example (tests/prevalence/conftest.py): against hand-computed
values, against stats.prevalence and ppi-python called directly, pending items, bad input,
permissions."""

from __future__ import annotations

import numpy as np
import pytest

from prevalence.models import ANY_VIOLATION, PrevalenceEstimate
from prevalence.services import PrevalenceInvalid, PrevalenceRequest, prevalence_estimate_create
from stats import prevalence as sp
from tests.content.users import sampler
from touchstone.errors import PermissionDenied
from touchstone.models import AuditEvent

from .conftest import HUMAN, make_run

pytestmark = pytest.mark.django_db

# "any violation" on the worked example, by member position.
Y_CENSUS = [1, 1, 1, 1, 0, 0]
Y_AUDIT = [1, 0, 0, 0, 0]
YHAT_AUDIT = [0, 0, 0, 0, 0]
YHAT_OTHERS = [1] + [0] * 8


def _estimate(worked, ops, estimator: str, label: str = ANY_VIOLATION, **options) -> PrevalenceEstimate:
    sample, run, _ = worked
    rows = prevalence_estimate_create(sample=sample, run=run, acting_user=ops, request=PrevalenceRequest(
        estimators=(estimator,), labels=(label,), **options))
    assert len(rows) == 1
    return rows[0]


def test_hand_computed_values(worked, ops):
    # PPI: 0.3 · 4/6 + 0.7 · (mean of the 9 unaudited LLM labels 1/9 + mean(y − ŷ) on the audit 1/5).
    ppi = _estimate(worked, ops, "ppi")
    assert ppi.estimate == pytest.approx(0.3 * 4 / 6 + 0.7 * (1 / 9 + 1 / 5))
    # Human-only beside it: 0.3 · 4/6 + 0.7 · 1/5 = 0.34.
    assert ppi.classical_estimate == pytest.approx(0.34)
    assert ppi.n_human == 11 and ppi.n_llm == 14 and ppi.lam == 1.0
    # Hájek with π·π2: (4/0.5 + 1/0.2) / (6/0.5 + 5/0.2) = 13/37; HT divides by N = 40.
    assert _estimate(worked, ops, "hajek").estimate == pytest.approx(13 / 37)
    assert _estimate(worked, ops, "ht").estimate == pytest.approx(13 / 40)
    stratified = _estimate(worked, ops, "stratified")
    assert stratified.estimate == pytest.approx(0.34)
    psi = np.array(Y_CENSUS + [v * 14 / 5 for v in Y_AUDIT] + [0] * 9, dtype=float)
    within = 0.34 * 0.66 * 20 / 19
    assert stratified.se == pytest.approx(np.sqrt((psi.var(ddof=1) - 0.5 * within) / 20))


def test_against_stats_and_ppi_python(worked, ops):
    pi_star = [0.5] * 6 + [0.5 * 0.4] * 5
    y = Y_CENSUS + Y_AUDIT
    hajek = sp.hajek_mean_ci(y, pi_star)
    row = _estimate(worked, ops, "hajek")
    assert (row.estimate, row.se, row.ci_low, row.ci_wilson_high) == pytest.approx(
        (hajek["estimate"], hajek["se"], hajek["ci"][0], hajek["ci_wilson"][1]))
    row = _estimate(worked, ops, "ht")
    assert row.estimate == pytest.approx(sp.horvitz_thompson(y, pi_star, 40)["mean"])
    # Its SE: the same total over all 20 members (y/π2, 0 when not labelled by people).
    over_sample = sp.horvitz_thompson(Y_CENSUS + [v / 0.4 for v in Y_AUDIT] + [0] * 9, [0.5] * 20, 40)
    assert (row.estimate, row.se) == pytest.approx((over_sample["mean"], over_sample["se_mean"]))
    # Inside the auto group, PPI(++) is ppi-python's estimator on the audit and the other auto items.
    for kind, tuning in (("ppi", False), ("ppi++", True)):
        inner = sp.ppi_mean(Y_AUDIT, YHAT_AUDIT, YHAT_OTHERS, power_tuning=tuning)
        row = _estimate(worked, ops, kind)
        assert row.lam == pytest.approx(inner["lam"])
        assert row.estimate == pytest.approx(0.3 * 4 / 6 + 0.7 * inner["estimate"])
        assert row.strata[0]["groups"]["auto"]["n_human"] == 5


def test_all_labelled_stratified_is_cochran(published, ops):
    # Every member labelled by people (all routed by rule): the two-phase stratified estimate is
    # stats.stratified_prevalence with N = 40, n = 20.
    from runs.models import ItemDecision

    sample, run, members = make_run(published, name="all-human",
                                    human={i: ("insult" if i % 4 == 0 else "not_harassment") for i in range(20)})
    ItemDecision.objects.filter(run=run).update(outcome="human_review", reason="low_confidence")
    row = prevalence_estimate_create(sample=sample, run=run, acting_user=ops, request=PrevalenceRequest(
        estimators=("stratified",), labels=("insult",)))[0]
    expected = sp.stratified_prevalence([{"N_h": 40, "n_h": 20, "y_h": 5}])
    assert (row.estimate, row.se, row.ci_wilson_low) == pytest.approx(
        (expected["estimate"], expected["se"], expected["ci_wilson"][0]))


def test_defaults_every_label_and_estimator_and_records_the_run(worked, ops):
    sample, run, _ = worked
    rows = prevalence_estimate_create(sample=sample, run=run, request=PrevalenceRequest(), acting_user=ops)
    labels = {r.label for r in rows}
    assert labels == {"not_harassment", "insult", "hate_harassment", "sexual_harassment", "threat", ANY_VIOLATION}
    assert len(rows) == 6 * 6
    row = next(r for r in rows if r.label == "insult" and r.estimator == "ppi")
    assert row.simulated and row.design["audit_share"] == 0.4 and row.design["frame_size"] == 40
    assert row.agreement["audit"]["n"] == 5 and row.agreement["audit"]["agreement"] == pytest.approx(0.8)
    assert row.code_version and row.convention.startswith("Wald")
    assert AuditEvent.objects.filter(event_type="prevalence_estimate.created").count() == 36


def test_pending_items_are_refused_then_missing_at_random(published, ops):
    sample, run, members = make_run(published, name="pending", human={k: v for k, v in HUMAN.items() if k != 9})
    request = PrevalenceRequest(estimators=("ppi",), labels=(ANY_VIOLATION,))
    with pytest.raises(PrevalenceInvalid, match="1 of the sample's 20 items have no label yet") as caught:
        prevalence_estimate_create(sample=sample, run=run, request=request, acting_user=ops)
    assert caught.value.extra["field"] == "pending"
    row = prevalence_estimate_create(sample=sample, run=run, acting_user=ops, request=PrevalenceRequest(
        estimators=("ppi",), labels=(ANY_VIOLATION,), allow_pending=True))[0]
    assert row.n_pending == 1 and row.n_human == 10
    # The audit cell now has 4 labels of 14: 0.3 · 4/6 + 0.7 · (1/10 + 1/4).
    assert row.estimate == pytest.approx(0.3 * 4 / 6 + 0.7 * (1 / 10 + 1 / 4))


@pytest.mark.parametrize(("request_options", "field"), [
    ({"labels": ("spam",)}, "label"),
    ({"estimators": ("bootstrap",)}, "estimator"),
    ({"alpha": 1.5}, "alpha"),
])
def test_bad_input_names_the_field(worked, ops, request_options, field):
    sample, run, _ = worked
    with pytest.raises(PrevalenceInvalid) as caught:
        prevalence_estimate_create(sample=sample, run=run, request=PrevalenceRequest(**request_options),
                                   acting_user=ops)
    assert caught.value.extra["field"] == field
    assert not PrevalenceEstimate.objects.exists()


def test_a_run_of_another_sample_is_refused(worked, published, ops):
    from content.services.sampling import sample_create

    _, run, _ = worked
    other = sample_create(name="other", method="uniform", size=5, seed=1, source="t", acting_user=sampler())
    with pytest.raises(PrevalenceInvalid, match="run: run 'r1' labelled sample 'twenty'"):
        prevalence_estimate_create(sample=other, run=run, request=PrevalenceRequest(), acting_user=ops)


def test_no_audit_leaves_the_auto_group_unestimable(published, ops):
    sample, run, _ = make_run(published, name="no-audit", human={i: "insult" for i in range(6)})
    from runs.models import ItemDecision

    ItemDecision.objects.filter(run=run, reason="audit").update(outcome="auto_accepted", reason="agreed")
    with pytest.raises(PrevalenceInvalid, match="no human label among the 14 auto-accepted items"):
        prevalence_estimate_create(sample=sample, run=run, acting_user=ops, request=PrevalenceRequest(
            estimators=("ppi",), labels=("insult",)))


def test_permissions(worked, pipeline, writer):
    sample, run, _ = worked
    for user in (pipeline, writer):
        with pytest.raises(PermissionDenied, match="prevalence.add_prevalenceestimate"):
            prevalence_estimate_create(sample=sample, run=run, request=PrevalenceRequest(), acting_user=user)
    assert pipeline.has_perm("prevalence.view_prevalenceestimate")
    assert not writer.has_perm("prevalence.view_prevalenceestimate")


def test_an_open_review_task_is_pending(worked, published, ops):
    # Member 3 has one label but its review task still waits for a second one: pending.
    from review.models import ReviewQueue, ReviewTask, Vendor

    sample, run, members = worked
    queue = ReviewQueue.objects.create(name="q", policy_version=published, vendor=Vendor.objects.get(name="acme"))
    ReviewTask.objects.create(queue=queue, item_id=members[3], status="open", labels=1)
    ReviewTask.objects.create(queue=queue, item_id=members[4], status="complete", labels=2)
    with pytest.raises(PrevalenceInvalid, match=r"1 of the sample's 20 items have no label yet \(1 routed"):
        prevalence_estimate_create(sample=sample, run=run, acting_user=ops, request=PrevalenceRequest(
            estimators=("ppi",), labels=(ANY_VIOLATION,)))


def test_llm_agreement_with_a_golden_set(worked, published, ops):
    from content.models import ContentItem
    from tests.evaluation.evaluations.conftest import frozen_goldset

    sample, run, members = worked
    external = dict(ContentItem.objects.filter(pk__in=members).values_list("pk", "external_id"))
    # Gold on members 6 (insult; the LLM said not_harassment), 11 (insult; LLM insult), 12 (not; LLM not).
    golden = frozen_goldset(published, [(external[members[i]], gold, {}, [], {}) for i, gold in
                                        ((6, "insult"), (11, "insult"), (12, "not_harassment"))], source="t")
    row = prevalence_estimate_create(sample=sample, run=run, golden_set_version=golden, acting_user=ops,
                                     request=PrevalenceRequest(estimators=("hajek",), labels=("insult",)))[0]
    assert row.golden_set_version == golden
    check = row.agreement["golden_set"]
    assert check["n"] == 3 and check["agreement"] == pytest.approx(2 / 3)
    assert check["ci"] == pytest.approx(list(sp.wilson_interval(2 / 3, (2 / 9 / 3) ** 0.5, 3)))
