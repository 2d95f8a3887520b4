"""comparison_create: deltas against scikit-learn on the same items, McNemar against
statsmodels, identical versions, the items only one version scored, per label and per slice,
flips, thresholds chosen as evaluate chooses them, permissions and bad options."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score
from statsmodels.stats.contingency_tables import mcnemar

from evaluation.models import Comparison
from evaluation.services import (
    ComparisonInvalid,
    ComparisonOptions,
    EvaluationOptions,
    comparison_create,
    evaluation_create,
    signal_create,
    signal_scores_add,
    signal_version_create,
)
from touchstone.audit import AuditEvent
from touchstone.errors import PermissionDenied

from .conftest import MISSING_A, MISSING_B, VIOLATING, N, label_arrays, score_arrays

pytestmark = pytest.mark.django_db
BOTH = [i for i in range(N) if i not in MISSING_A | MISSING_B]


def _compare(a, b, goldset, user, **options):
    options.setdefault("n_resamples", 300)
    comparison = comparison_create(signal_version_a=a, signal_version_b=b, golden_set_version=goldset,
                                   options=ComparisonOptions(**options), acting_user=user)
    return Comparison.objects.get(pk=comparison.pk)


def _sk(truth, flagged):
    return {"precision": precision_score(truth, flagged, zero_division=np.nan),
            "recall": recall_score(truth, flagged), "f1": f1_score(truth, flagged)}


def test_score_signals_match_scikit_learn_and_statsmodels(goldset, score_pair, ops):
    a, b = score_pair
    comparison = _compare(a, b, goldset, ops, threshold=0.5)
    doc = comparison.document
    json.dumps(doc, allow_nan=False)
    gold, scores_a, scores_b = score_arrays()
    truth = np.isin(np.asarray(gold)[BOTH], list(VIOLATING))
    flagged_a, flagged_b = scores_a[BOTH] >= 0.5, scores_b[BOTH] >= 0.5
    sk_a, sk_b = _sk(truth, flagged_a), _sk(truth, flagged_b)
    assert doc["items"] == len(BOTH) == 197
    for name in ("precision", "recall", "f1"):
        row = doc["binary"][name]
        assert row["a"] == pytest.approx(sk_a[name]) and row["b"] == pytest.approx(sk_b[name])
        assert row["delta"] == pytest.approx(sk_b[name] - sk_a[name])
        assert row["ci_low"] <= row["delta"] <= row["ci_high"] and row["ci_low"] < row["ci_high"]
    assert doc["binary"]["recall"]["delta"] > 0  # B was built to find more
    right_a, right_b = flagged_a == truth, flagged_b == truth
    table = [[int((right_a & right_b).sum()), int((right_a & ~right_b).sum())],
             [int((~right_a & right_b).sum()), int((~right_a & ~right_b).sum())]]
    expected = mcnemar(table, exact=True)
    m = doc["mcnemar"]
    assert (m["b"], m["c"]) == (table[0][1], table[1][0])
    assert m["p_value"] == pytest.approx(expected.pvalue)
    assert doc["flips"]["right_to_wrong"]["count"] == table[0][1]
    assert doc["flips"]["wrong_to_right"]["count"] == table[1][0]
    first = doc["flips"]["wrong_to_right"]["items"][0]
    i = int(first["ref"].removeprefix("g:e"))
    assert (first["a"]["score"], first["b"]["score"]) == (float(scores_a[i]), float(scores_b[i]))
    assert first["a"]["positive"] != first["b"]["positive"]
    # Δrecall@FPR against a direct computation: the largest recall with FPR <= 0.01
    for side, s in (("a", scores_a[BOTH]), ("b", scores_b[BOTH])):
        best = max((((s >= t) & truth).sum() / truth.sum()) for t in np.unique(s)
                   if ((s >= t) & ~truth).sum() / (~truth).sum() <= 0.01)
        assert doc["binary"]["recall_at_fpr"][side] == pytest.approx(best)
    assert doc["per_label"] is None and "two label signals" in doc["per_label_reason"]
    assert (comparison.score_count_a, comparison.score_count_b) == (198, 198)
    assert comparison.options["threshold"] == 0.5 and comparison.golden_set_digest == goldset.digest
    event = AuditEvent.objects.get(event_type="comparison.created")
    assert event.details["delta_f1"] == pytest.approx(sk_b["f1"] - sk_a["f1"])


def test_items_scored_by_one_version_only_are_counted_and_left_out(goldset, score_pair, ops):
    a, b = score_pair
    doc = _compare(a, b, goldset, ops, n_resamples=20).document
    assert doc["coverage"] == {"gold_items": 200, "both": 197, "only_a": 1, "only_b": 1, "neither": 1,
                               "only_a_items": ["g:e000"], "only_b_items": ["g:e050"], "share_both": 197 / 200}
    refs = {row["ref"] for kind in doc["flips"].values() for row in kind["items"]}
    assert not refs & {"g:e000", "g:e007", "g:e050"}


def test_a_version_against_itself_changes_nothing(goldset, score_pair, ops):
    a, _ = score_pair
    doc = _compare(a, a, goldset, ops, threshold=0.4, slice_by="country").document
    for name in ("precision", "recall", "f1", "recall_at_fpr"):
        row = doc["binary"][name]
        assert (row["delta"], row["ci_low"], row["ci_high"]) == (0, 0, 0), name
    assert doc["mcnemar"]["p_value"] == 1 and doc["mcnemar"]["discordant"] == 0
    assert doc["flips"]["right_to_wrong"] == {"count": 0, "shown": 0, "items": []}
    assert all(row["f1"]["delta"] == 0 and row["mcnemar"]["p_value"] == 1 for row in doc["slices"])


def test_label_signals_per_label_against_scikit_learn(goldset, label_pair, ops):
    a, b = label_pair
    doc = _compare(a, b, goldset, ops, slice_by="country").document
    gold, labels_a, labels_b = label_arrays()
    g = np.asarray(gold, dtype=object)[BOTH]
    la, lb = np.asarray(labels_a, dtype=object)[BOTH], np.asarray(labels_b, dtype=object)[BOTH]
    rows = {row["label"]: row for row in doc["per_label"]}
    for label in ("insult", "threat", "not_harassment"):
        f1_a = f1_score(g == label, la == label)
        f1_b = f1_score(g == label, lb == label)
        assert rows[label]["f1"]["delta"] == pytest.approx(f1_b - f1_a), label
        assert rows[label]["support"] == int((g == label).sum())
        assert rows[label]["f1"]["ci_low"] <= rows[label]["f1"]["delta"] <= rows[label]["f1"]["ci_high"]
    truth = np.isin(g, list(VIOLATING))
    sk = _sk(truth, np.isin(lb, list(VIOLATING)))
    assert doc["binary"]["f1"]["b"] == pytest.approx(sk["f1"])
    assert doc["binary"]["recall_at_fpr"]["delta"] is None
    assert doc["binary"]["recall_at_fpr"]["reason"] == "needs two score signals"
    table = [[int(((la == g) & (lb == g)).sum()), int(((la == g) & (lb != g)).sum())],
             [int(((la != g) & (lb == g)).sum()), int(((la != g) & (lb != g)).sum())]]
    assert doc["mcnemar"]["p_value"] == pytest.approx(mcnemar(table, exact=True).pvalue)
    assert doc["correctness"] == "the signal's label is the gold label"
    # slices: every compared item in exactly one; 10 % have no country
    assert sum(row["items"] for row in doc["slices"]) == 197
    assert {row["slice"] for row in doc["slices"]} == {"de", "fr", "us", "(missing)"}
    de = next(row for row in doc["slices"] if row["slice"] == "de")
    mask = np.array([goldset_country(i) == "de" for i in BOTH])
    assert de["mcnemar"]["b"] == int(((la == g) & (lb != g))[mask].sum())


def goldset_country(i: int) -> str | None:
    from tests.evaluation.evaluations.conftest import random_gold

    return random_gold(N)[1][i] if i % 10 else None


def test_thresholds_are_chosen_as_evaluate_chooses_them(goldset, score_pair, ops):
    a, b = score_pair
    doc = _compare(a, b, goldset, ops, target_precision=0.8).document
    for side, version in (("a", a), ("b", b)):
        evaluation = evaluation_create(signal_version=version, golden_set_version=goldset,
                                       options=EvaluationOptions(target_precision=0.8, n_resamples=20),
                                       acting_user=ops)
        # evaluate uses all the version's items, the comparison only the shared ones: the same rule
        assert doc["thresholds"][side]["chosen_by"] == evaluation.document["threshold"]["chosen_by"]
    unreachable = _compare(a, b, goldset, ops, target_precision=1.0, n_resamples=50).document
    json.dumps(unreachable, allow_nan=False)
    flags_nothing = [s for s in ("a", "b") if unreachable["thresholds"][s]["flags_nothing"]]
    for side in flags_nothing:
        assert unreachable["binary"]["precision"][side] is None
        assert "no item was predicted positive" in unreachable["binary"]["precision"]["reason"]


def test_permissions(goldset, score_pair, pipeline, author):
    a, b = score_pair
    for user in (pipeline, author):
        with pytest.raises(PermissionDenied):
            _compare(a, b, goldset, user)
    assert not Comparison.objects.exists()


@pytest.mark.parametrize(("options", "field"), [
    ({"threshold": 0.5, "max_fpr": 0.1}, "max_fpr"),
    ({"threshold": 1.5}, "threshold"),
    ({"n_resamples": 0}, "n_resamples"),
    ({"seed": -1}, "seed"),
    ({"slice_by": "x" * 101}, "slice_by"),
])
def test_bad_options_name_the_field(goldset, score_pair, ops, options, field):
    a, b = score_pair
    with pytest.raises(ComparisonInvalid) as caught:
        _compare(a, b, goldset, ops, **options)
    assert caught.value.extra["field"] == field and str(caught.value).startswith(f"{field}: ")


def test_bad_pairs_name_the_field(goldset, label_pair, score_pair, published, ops):
    la, lb = label_pair
    with pytest.raises(ComparisonInvalid, match="^threshold: two label signals"):
        _compare(la, lb, goldset, ops, threshold=0.5)
    insult = signal_create(name="insult-clf", kind="production_classifier", policy=published.policy,
                           output_type="score", score_label="insult", acting_user=ops)
    other = signal_version_create(signal=insult, acting_user=ops)
    with pytest.raises(ComparisonInvalid, match="^signal_b: .*one binary question"):
        _compare(score_pair[0], other, goldset, ops)
    empty = signal_version_create(signal=score_pair[0].signal, acting_user=ops)
    with pytest.raises(ComparisonInvalid, match="^signal_b: no item .* scored by both"):
        _compare(score_pair[0], empty, goldset, ops)
    signal_scores_add(version=empty, rows=[{"source": "g", "external_id": "e001", "score": 0.3}], acting_user=ops)
    doc = _compare(score_pair[0], empty, goldset, ops, n_resamples=20).document
    assert doc["items"] == 1 and doc["binary"]["recall_at_fpr"]["a"] is None  # one item: 0/0 with a reason
    json.dumps(doc, allow_nan=False)


def test_p_values_and_delta_cells_for_people():
    from evaluation.comparison import delta_cell, p_text

    assert (p_text(None), p_text(3e-7), p_text(0.04321), p_text(1.0)) == ("—", "< 0.0001", "0.0432", "1.0000")
    cell = delta_cell({"a": 0.5, "b": 0.55, "delta": 0.05, "ci_low": -0.01, "ci_high": 0.11, "ci_reason": None})
    assert cell == {"text": "+0.050 [-0.010, +0.110]", "reason": "", "ab": "A 0.500 → B 0.550"}
    assert delta_cell({"delta": None, "reason": "A: no positive item"})["reason"] == "A: no positive item"
