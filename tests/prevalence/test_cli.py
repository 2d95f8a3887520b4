"""manage.py prevalence estimate|list|show, with --json, and errors naming the option."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from prevalence.models import PrevalenceEstimate

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = StringIO()
    call_command("prevalence", *args, stdout=out)
    return out.getvalue()


def test_estimate_json_list_and_show(worked, ops):
    doc = json.loads(_run("estimate", "--sample", "twenty", "--run", "r1", "--estimator", "ppi", "--estimator",
                          "hajek", "--any-violation", "--json", "--user", "ops"))
    rows = {row["estimator"]: row for row in doc["estimates"]}
    assert set(rows) == {"ppi", "hajek"}
    ppi = rows["ppi"]
    assert ppi["label"] == "any violation" and ppi["simulated"] is True
    assert ppi["estimate"] == pytest.approx(0.3 * 4 / 6 + 0.7 * (1 / 9 + 1 / 5))
    assert ppi["classical"]["estimate"] == pytest.approx(0.34) and ppi["n_human"] == 11 and ppi["n_llm"] == 14
    assert rows["hajek"]["ci_wilson"] is not None and rows["hajek"]["classical"] is None
    listed = json.loads(_run("list", "--policy", "harassment", "--json"))["estimates"]
    assert {row["id"] for row in listed} == {row["id"] for row in doc["estimates"]}
    assert json.loads(_run("show", str(ppi["id"]), "--json"))["estimate"] == ppi["estimate"]
    text = _run("show", str(ppi["id"]))
    assert "any violation ppi" in text and "SIMULATED VOTERS" in text and "5 audited items: 80.0% agree" in text


def test_text_output_says_simulated(worked, ops):
    text = _run("estimate", "--sample", "twenty", "--run", "r1", "--label", "insult", "--user", "ops")
    assert "[SIMULATED VOTERS]" in text and "page: /prevalence/harassment/" in text
    assert PrevalenceEstimate.objects.filter(label="insult").count() == 6


@pytest.mark.parametrize(("args", "message"), [
    (["--label", "spam"], "--label: 'spam' is not a label"),
    (["--alpha", "2"], "--alpha: 2.0 is not a number between 0 and 1"),
    (["--golden-set", "g@x"], "--golden-set: 'g@x': the version after '@' must be a number"),
])
def test_bad_options_are_named(worked, ops, args, message):
    with pytest.raises(CommandError, match=message):
        _run("estimate", "--sample", "twenty", "--run", "r1", *args, "--user", "ops")


def test_unknown_sample_and_an_author_refused(worked, ops, writer):
    with pytest.raises(CommandError, match="No sample 'nope'"):
        _run("estimate", "--sample", "nope", "--run", "r1", "--user", "ops")
    with pytest.raises(CommandError, match="prevalence.add_prevalenceestimate"):
        _run("estimate", "--sample", "twenty", "--run", "r1", "--user", "writer")
