"""`manage.py compare`: ops compare and see the deltas with CIs, McNemar and the flips; --json
prints the stored document; pipelines and authors are refused; bad options are a CommandError
naming the option."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from evaluation.comparison import delta_text
from evaluation.models import Comparison
from evaluation.services import signal_version_create

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = StringIO()
    call_command("compare", *args, stdout=out)
    return out.getvalue()


def test_ops_compare_and_see_deltas_with_cis(score_pair, ops):
    out = _run("clf@1", "clf@2", "--golden-set", "gs@1", "--threshold", "0.5", "--slice-by", "country",
               "--resamples", "100", "--user", "ops")
    comparison = Comparison.objects.get()
    doc = comparison.document
    assert out.startswith(f"comparison {comparison.pk}: clf@2 (B) vs clf@1 (A) on gs@1 (digest dddddddddddd)")
    assert "items: 197 of 200 gold items scored by both; left out: 1 scored only by A, 1 only by B, 1 by neither" \
        in out
    assert "threshold A: 0.5 (given)" in out
    f1 = doc["binary"]["f1"]
    assert f"violating: ΔF1: {delta_text(f1)}" in out
    assert f"{f1['delta']:+.3f} [{f1['ci_low']:+.3f}, {f1['ci_high']:+.3f}]" in out
    assert "Δrecall@FPR<=0.01" in out
    m = doc["mcnemar"]
    assert f"b = {m['b']} (A right, B wrong), c = {m['c']} (A wrong, B right), p = {m['p_value']:.4g}" in out
    assert (f"flips: {doc['flips']['right_to_wrong']['count']} right→wrong, "
            f"{doc['flips']['wrong_to_right']['count']} wrong→right") in out
    assert out.rstrip().endswith(f"page: /comparisons/{comparison.pk}/ · API: /api/v1/comparisons/{comparison.pk}/")
    assert comparison.created_by == ops and doc["slices"]


def test_json_prints_the_stored_document(score_pair, ops):
    doc = json.loads(_run("clf@1", "clf@2", "--golden-set", "gs", "--max-fpr", "0.1", "--resamples", "50",
                          "--json", "--user", "ops"))
    comparison = Comparison.objects.get()
    assert doc["comparison"] == comparison.pk and doc["binary"] == comparison.document["binary"]
    assert doc["options"]["max_fpr"] == 0.1 and doc["max_fpr"] == 0.1
    assert doc["thresholds"]["a"]["chosen_by"] == "largest recall at FPR <= 0.1"
    assert doc["score_counts"] == {"a": 198, "b": 198}


@pytest.mark.parametrize("user", ["pipe", "author"])
def test_pipelines_and_authors_may_not_compare(score_pair, pipeline, author, user):
    with pytest.raises(CommandError, match="evaluation.add_evaluation"):
        _run("clf@1", "clf@2", "--golden-set", "gs", "--user", user)
    assert not Comparison.objects.exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--threshold", "2"], "--threshold: 2.0 is not a number in [0, 1]"),
    (["--resamples", "0"], "--resamples: 0: a whole number from 1 to 10000"),
    (["--seed", "-3"], "--seed: -3: a whole number >= 0"),
    (["--golden-set", "gs@x"], "--golden-set: 'gs@x': the version after '@' must be a number"),
])
def test_bad_options_are_one_line_naming_the_option(score_pair, ops, args, message):
    base = ["clf@1", "clf@2", "--user", "ops"]
    if "--golden-set" not in args:
        base += ["--golden-set", "gs"]
    with pytest.raises(CommandError) as caught:
        _run(*base, *args)
    assert str(caught.value) == message


def test_unknown_versions_label_thresholds_and_nothing_shared(label_pair, score_pair, ops):
    with pytest.raises(CommandError, match="No version 9 of signal 'clf'"):
        _run("clf@1", "clf@9", "--golden-set", "gs", "--user", "ops")
    with pytest.raises(CommandError, match="^--threshold: two label signals have no threshold"):
        _run("jury@1", "jury@2", "--golden-set", "gs", "--threshold", "0.5", "--user", "ops")
    signal_version_create(signal=score_pair[0].signal, acting_user=ops)  # clf@3, without scores
    with pytest.raises(CommandError, match="^SIGNAL@B: no item .* scored by both"):
        _run("clf@1", "clf@3", "--golden-set", "gs", "--user", "ops")
    assert not Comparison.objects.exists()
    out = _run("jury@1", "jury@2", "--golden-set", "gs", "--resamples", "50", "--user", "ops")
    assert "threshold A: none (a label signal: its label is positive)" in out
    assert "Δrecall@FPR<=0.01: undefined (needs two score signals)" in out
    assert "correct = the signal's label is the gold label" in out
