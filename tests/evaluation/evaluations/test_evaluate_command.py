"""`manage.py evaluate`: ops evaluate and see the headline metrics with CIs, --json prints the
stored document, others are refused, bad options are a CommandError naming the option."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from evaluation.models import Evaluation
from evaluation.services import signal_scores_add

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored(goldset, score_version, ops):
    signal_scores_add(version=score_version, rows=[{"source": "g", "external_id": f"e{i:03d}",
                                                    "score": round((i * 37 % 200) / 200, 3)} for i in range(190)],
                      acting_user=ops)
    return score_version


def _run(*args: str) -> str:
    out = StringIO()
    call_command("evaluate", *args, stdout=out)
    return out.getvalue()


def test_ops_evaluate_and_see_headline_metrics_with_cis(scored, ops):
    out = _run("clf@1", "--golden-set", "gs@1", "--threshold", "0.4", "--slice-by", "country", "--resamples", "100",
               "--user", "ops")
    evaluation = Evaluation.objects.get()
    assert out.startswith(f"evaluation {evaluation.pk}: clf@1 on gs@1 (digest dddddddddddd)")
    assert "coverage: 190 of 200 gold items scored, 10 without a score (g:e190" in out
    assert "threshold: 0.4 (given)" in out
    f1 = evaluation.document["binary"]["f1"]
    assert f"violating: F1: {f1['value']:.3f} [{f1['ci_low']:.3f}, {f1['ci_high']:.3f}]" in out
    assert "ROC AUC: " in out and "Cohen's kappa" in out
    assert out.rstrip().endswith(f"page: /evaluations/{evaluation.pk}/ · API: /api/v1/evaluations/{evaluation.pk}/")


def test_json_prints_the_stored_document(scored, ops):
    doc = json.loads(_run("clf@1", "--golden-set", "gs", "--max-fpr", "0.1", "--resamples", "50", "--json",
                          "--user", "ops"))
    evaluation = Evaluation.objects.get()
    assert doc["evaluation"] == evaluation.pk
    assert doc["binary"] == evaluation.document["binary"]
    assert doc["options"]["max_fpr"] == 0.1 and doc["threshold"]["chosen_by"] == "largest recall at FPR <= 0.1"
    assert doc["scores"]["recall_at_fpr"]["max_fpr"] == 0.1


@pytest.mark.parametrize("user", ["pipe", "author"])
def test_pipelines_and_authors_may_not_evaluate(scored, pipeline, author, user):
    with pytest.raises(CommandError, match="evaluation.add_evaluation"):
        _run("clf@1", "--golden-set", "gs", "--user", user)
    assert not Evaluation.objects.exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--threshold", "2"], "--threshold: 2.0 is not a number in [0, 1]"),
    (["--threshold", "x"], "--threshold: invalid float value"),
    (["--threshold", "0.1", "--max-fpr", "0.1"], "not allowed with argument"),
    (["--resamples", "0"], "--resamples: 0"),
    (["--violating-labels", "spam"], "--violating-labels: spam not in the golden set's labels"),
    (["--golden-set", "nope"], "No golden set 'nope'"),
])
def test_bad_options_are_one_line_naming_the_option(scored, ops, args, message):
    base = ["clf@1", "--user", "ops"] + ([] if "--golden-set" in args else ["--golden-set", "gs"])
    with pytest.raises(CommandError) as caught:
        _run(*base, *args)
    assert message in str(caught.value)
    assert not Evaluation.objects.exists()
