"""evaluation_create: the stored document against scikit-learn on the same items, coverage,
slices, label and score signals, the scores used, permissions and bad options."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import (
    average_precision_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    precision_score,
    recall_score,
    roc_auc_score,
)

from evaluation.models import Evaluation
from evaluation.services import EvaluationInvalid, EvaluationOptions, evaluation_create, signal_scores_add
from touchstone.audit import AuditEvent
from touchstone.errors import PermissionDenied

from .conftest import TAXONOMY, VIOLATING, random_gold

pytestmark = pytest.mark.django_db
UNSCORED = {0, 7, 50}  # gold items the signal never scored


@pytest.fixture
def scored(goldset, score_version, ops):
    _, _, scores = random_gold(200)
    rows = [{"source": "g", "external_id": f"e{i:03d}", "score": float(scores[i])}
            for i in range(200) if i not in UNSCORED]
    signal_scores_add(version=score_version, rows=rows, acting_user=ops)
    return scores


def _expected(goldset_rows, scores):
    keep = [i for i in range(200) if i not in UNSCORED]
    truth = np.array([goldset_rows[i][1] in VIOLATING for i in keep])
    return keep, truth, np.asarray(scores)[keep]


def test_a_score_signal_matches_scikit_learn(goldset, goldset_rows, score_version, scored, ops):
    evaluation = evaluation_create(signal_version=score_version, golden_set_version=goldset,
                                   options=EvaluationOptions(threshold=0.5, n_resamples=200), acting_user=ops)
    doc = Evaluation.objects.get(pk=evaluation.pk).document
    json.dumps(doc, allow_nan=False)  # plain JSON: no NaN, no Infinity
    _, truth, s = _expected(goldset_rows, scored)
    flagged = s >= 0.5
    binary = doc["binary"]
    assert binary["precision"]["value"] == pytest.approx(precision_score(truth, flagged))
    assert binary["recall"]["value"] == pytest.approx(recall_score(truth, flagged))
    assert binary["f1"]["value"] == pytest.approx(f1_score(truth, flagged))
    assert (binary["tp"], binary["fp"]) == (int((truth & flagged).sum()), int((~truth & flagged).sum()))
    assert binary["precision"]["ci_low"] < binary["precision"]["value"] < binary["precision"]["ci_high"]
    assert binary["f1"]["ci_low"] < binary["f1"]["value"] < binary["f1"]["ci_high"]
    assert doc["scores"]["roc_auc"]["value"] == pytest.approx(roc_auc_score(truth, s))
    assert doc["scores"]["average_precision"]["value"] == pytest.approx(average_precision_score(truth, s))
    assert doc["scores"]["roc_auc"]["ci_low"] < doc["scores"]["roc_auc"]["value"] < doc["scores"]["roc_auc"]["ci_high"]
    assert doc["threshold"] == {"value": 0.5, "flags_nothing": False, "chosen_by": "given"}
    assert doc["coverage"]["gold_items"] == 200 and doc["coverage"]["scored"] == 197
    assert sorted(doc["coverage"]["unscored_items"]) == ["g:e000", "g:e007", "g:e050"]
    assert [row["label"] for row in doc["per_label"]] == ["violating", "not violating"]
    assert doc["confusion_matrix"]["counts"] == confusion_matrix(
        np.where(truth, 0, 1), np.where(flagged, 0, 1), labels=[0, 1]).tolist()
    assert doc["cohen_kappa"]["value"] == pytest.approx(cohen_kappa_score(truth, flagged))
    roc = doc["scores"]["curves"]["roc"]
    assert roc["thresholds"][0] is None and roc["fpr"][0] == 0
    assert len(doc["scores"]["threshold_table"]) == 21
    assert doc["calibration"]["brier"] == pytest.approx(float(np.mean((s - truth) ** 2)))
    assert 0 <= doc["calibration"]["ece_equal_mass"] <= 1
    fn = doc["errors"]["false_negatives"]
    assert fn["count"] == int((truth & ~flagged).sum())
    assert sum(g["count"] for g in fn["by_label"]) == fn["count"]
    insult_fn = sum(1 for i, t, f in zip(_expected(goldset_rows, scored)[0], truth, flagged, strict=True)
                    if t and not f and goldset_rows[i][1] == "insult")
    assert {g["rule_id"]: g["count"] for g in fn["by_rule"]}.get("HAR-1", 0) == insult_fn
    example = next(iter(doc["errors"]["examples"].values()))
    assert example["human_labels"][0]["vendor"] == "v" and example["llm"]["label"] == example["gold_label"]
    assert (evaluation.score_count, evaluation.golden_set_digest) == (197, "d" * 64)
    assert evaluation.code_version["touchstone"] and "commit" in evaluation.code_version
    assert AuditEvent.objects.filter(event_type="evaluation.created", object_id=str(evaluation.pk)).exists()


def test_slices_match_scikit_learn_on_each_slice(goldset, goldset_rows, score_version, scored, ops):
    evaluation = evaluation_create(signal_version=score_version, golden_set_version=goldset,
                                   options=EvaluationOptions(threshold=0.5, slice_by="country", n_resamples=100),
                                   acting_user=ops)
    keep, truth, s = _expected(goldset_rows, scored)
    country = np.array([goldset_rows[i][2].get("country", "(missing)") for i in keep])
    rows = {row["slice"]: row for row in evaluation.document["slices"]}
    assert set(rows) == {"de", "fr", "us", "(missing)"}
    for key, row in rows.items():
        mask = country == key
        assert row["items"] == int(mask.sum())
        assert row["recall"]["value"] == pytest.approx(recall_score(truth[mask], s[mask] >= 0.5))
        assert row["roc_auc"]["value"] == pytest.approx(roc_auc_score(truth[mask], s[mask]))
        assert row["f1"]["ci_method"] == "percentile bootstrap" and row["f1"]["ci_low"] is not None
    assert evaluation.options["slice_by"] == "country"


def test_a_target_precision_nothing_reaches_flags_nothing_and_is_stored_as_null(goldset, goldset_rows,
                                                                                   score_version, ops):
    negative = next(i for i, row in enumerate(goldset_rows) if row[1] == "not_harassment")
    rows = [{"source": "g", "external_id": f"e{i:03d}", "score": 1.0 if i == negative else 0.5} for i in range(200)]
    signal_scores_add(version=score_version, rows=rows, acting_user=ops)
    doc = evaluation_create(signal_version=score_version, golden_set_version=goldset,
                            options=EvaluationOptions(target_precision=1.0, n_resamples=50), acting_user=ops).document
    assert doc["threshold"]["value"] is None and doc["threshold"]["flags_nothing"] is True
    assert doc["binary"]["tp"] == doc["binary"]["fp"] == 0
    assert doc["binary"]["precision"]["value"] is None
    assert "TP + FP = 0" in doc["binary"]["precision"]["reason"]
    json.dumps(doc, allow_nan=False)


def test_a_label_signal_matches_scikit_learn_per_label(goldset, goldset_rows, label_version, ops):
    rng = np.random.default_rng(3)
    predicted = [row[1] if rng.uniform() < 0.7 else str(rng.choice(TAXONOMY)) for row in goldset_rows]
    signal_scores_add(version=label_version, rows=[
        {"source": "g", "external_id": row[0], "label": p, "score": 0.9} for row, p in zip(goldset_rows, predicted,
                                                                                             strict=True)],
        acting_user=ops)
    evaluation = evaluation_create(signal_version=label_version, golden_set_version=goldset,
                                   options=EvaluationOptions(n_resamples=200), acting_user=ops)
    doc = evaluation.document
    gold = [row[1] for row in goldset_rows]
    precision, recall, f1, support = precision_recall_fscore_support(gold, predicted, labels=TAXONOMY,
                                                                     zero_division=np.nan)
    by_label = {row["label"]: row for row in doc["per_label"]}
    for k, label in enumerate(TAXONOMY):
        assert by_label[label]["precision"]["value"] == pytest.approx(precision[k])
        assert by_label[label]["recall"]["value"] == pytest.approx(recall[k])
        assert by_label[label]["f1"]["value"] == pytest.approx(f1[k])
        assert by_label[label]["support"] == support[k]
    assert doc["confusion_matrix"]["counts"] == confusion_matrix(gold, predicted, labels=TAXONOMY).tolist()
    assert doc["cohen_kappa"]["value"] == pytest.approx(cohen_kappa_score(gold, predicted, labels=TAXONOMY))
    assert doc["cohen_kappa"]["ci_low"] < doc["cohen_kappa"]["value"] < doc["cohen_kappa"]["ci_high"]
    truth = np.isin(gold, list(VIOLATING))
    flagged = np.isin(predicted, list(VIOLATING))
    assert doc["binary"]["f1"]["value"] == pytest.approx(f1_score(truth, flagged))
    assert doc["scores"] is None and doc["kind"] == "label"
    right = np.array(gold) == np.array(predicted)
    assert doc["calibration"]["brier"] == pytest.approx(float(np.mean((0.9 - right) ** 2)))
    fp_labels = {g["label"] for g in doc["errors"]["false_positives"]["by_label"]}
    assert fp_labels <= VIOLATING  # false positives are grouped by the signal's (violating) label


def test_only_the_scores_present_at_the_start_are_used(goldset, score_version, ops):
    signal_scores_add(version=score_version, rows=[{"source": "g", "external_id": f"e{i:03d}", "score": 0.7}
                                                   for i in range(100)], acting_user=ops)
    first = evaluation_create(signal_version=score_version, golden_set_version=goldset,
                              options=EvaluationOptions(n_resamples=20), acting_user=ops)
    signal_scores_add(version=score_version, rows=[{"source": "g", "external_id": f"e{i:03d}", "score": 0.2}
                                                   for i in range(100, 200)], acting_user=ops)
    second = evaluation_create(signal_version=score_version, golden_set_version=goldset,
                               options=EvaluationOptions(n_resamples=20), acting_user=ops)
    first.refresh_from_db()
    assert (first.score_count, first.document["coverage"]["scored"]) == (100, 100)
    assert (second.score_count, second.document["coverage"]["scored"]) == (200, 200)
    assert second.max_score_id > first.max_score_id


def test_permissions_ops_evaluate_pipeline_and_author_may_not(goldset, score_version, scored, pipeline, author):
    for user in (pipeline, author):
        with pytest.raises(PermissionDenied, match="evaluation.add_evaluation"):
            evaluation_create(signal_version=score_version, golden_set_version=goldset,
                              options=EvaluationOptions(), acting_user=user)
    assert not Evaluation.objects.exists()


@pytest.mark.parametrize(("options", "field"), [
    (EvaluationOptions(threshold=0.5, max_fpr=0.1), "max_fpr"),
    (EvaluationOptions(threshold=1.5), "threshold"),
    (EvaluationOptions(target_precision=math.nan), "target_precision"),
    (EvaluationOptions(violating_labels=("insult", "spam")), "violating_labels"),
    (EvaluationOptions(n_resamples=0), "n_resamples"),
])
def test_bad_options_name_the_field(goldset, score_version, scored, ops, options, field):
    with pytest.raises(EvaluationInvalid) as caught:
        evaluation_create(signal_version=score_version, golden_set_version=goldset, options=options, acting_user=ops)
    assert caught.value.extra["field"] == field and caught.value.message.startswith(f"{field}: ")


def test_a_label_signal_refuses_a_threshold_and_an_unscored_version_is_refused(goldset, label_version, ops):
    with pytest.raises(EvaluationInvalid, match="^threshold: a label signal"):
        evaluation_create(signal_version=label_version, golden_set_version=goldset,
                          options=EvaluationOptions(threshold=0.5), acting_user=ops)
    with pytest.raises(EvaluationInvalid, match="^signal: .* no usable score"):
        evaluation_create(signal_version=label_version, golden_set_version=goldset, options=EvaluationOptions(),
                          acting_user=ops)
