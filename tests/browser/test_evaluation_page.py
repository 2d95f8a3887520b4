"""The evaluation page in a real browser: a pipeline user opens it from the API's link, sees
the headline metrics, the confusion matrix, both curves with the chosen threshold marked, the
reliability diagram, the slices and the errors by rule, at 1,280 px and 390 px without sideways
scrolling; an author is refused; ops reach it from the signal's admin page."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import Group

from evaluation.services import (
    EvaluationOptions,
    evaluation_create,
    signal_create,
    signal_scores_add,
    signal_version_create,
)
from tests.browser.conftest import admin_login
from tests.browser.test_home_and_layouts import WIDTHS, assert_fits, follow
from tests.evaluation.evaluations.conftest import frozen_goldset, random_gold

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def evaluation(published, django_user_model):
    users = {}
    for name, group in (("ops", "labeling ops"), ("pipe", "pipeline"), ("writer", "policy author")):
        users[name] = django_user_model.objects.create_user(name, password=f"pw-{name}", is_staff=True)
        users[name].groups.add(Group.objects.get(name=group))
    gold, countries, scores = random_gold(400, seed=11)
    rows = [(f"e{i:03d}", g, {"country": c}, [{"vendor": "acme", "role": "labeler", "label": g,
                                                **({"rule_ids": ["HAR-1"]} if g == "insult" else {})}],
             {"run": "demo-run", "label": g, "confidence": 0.81, "outcome": "auto_accepted", "votes": {}})
            for i, (g, c) in enumerate(zip(gold, countries, strict=True))]
    goldset = frozen_goldset(published, rows, name="harassment-gold")
    signal = signal_create(name="prod-classifier", kind="production_classifier", policy=published.policy,
                           output_type="score", score_label="violating", acting_user=users["ops"])
    version = signal_version_create(signal=signal, commit="4f2a9c1", acting_user=users["ops"])
    signal_scores_add(version=version, rows=[{"source": "g", "external_id": f"e{i:03d}", "score": float(scores[i])}
                                             for i in range(392)], acting_user=users["ops"])
    return evaluation_create(signal_version=version, golden_set_version=goldset,
                             options=EvaluationOptions(target_precision=0.8, slice_by="country", n_resamples=200),
                             acting_user=users["ops"])


def test_the_evaluation_page_at_two_widths(page, evaluation, artifacts_dir: Path) -> None:
    shots = artifacts_dir / "browser"
    shots.mkdir(exist_ok=True)
    url = f"/evaluations/{evaluation.pk}/"

    admin_login(page, "writer", "pw-writer")
    assert page.goto(url).status == 403
    assert "evaluation.view_evaluation" in page.content()

    admin_login(page, "pipe", "pw-pipe")
    page.goto(url)
    f1 = evaluation.document["binary"]["f1"]
    assert f"{f1['value']:.3f} [{f1['ci_low']:.3f}, {f1['ci_high']:.3f}]" in page.inner_text("#headline")
    assert page.locator("#pr-curve circle.chosen").count() == 1
    assert page.locator("#roc-curve circle.chosen").count() == 1
    assert page.locator("#confusion svg rect").count() == 4
    assert page.locator("#slices tbody tr").count() == 3
    assert "HAR-1" in page.inner_text("#errors-by-rule")
    assert page.inner_text("#coverage").strip() == "392 / 400"
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        assert_fits(page, f"evaluation page at {width}")
        page.screenshot(path=str(shots / f"60-evaluation-{width}.png"), full_page=True)
    example = page.locator("#errors-by-rule a").first
    ref = example.inner_text()
    example.click()
    assert ref in page.inner_text(f"#ex-{ref.replace(':', '')}")

    admin_login(page, "ops", "pw-ops")
    page.goto(f"/admin/evaluation/signal/{evaluation.signal_version.signal.pk}/change/")
    assert follow(page, "a.evaluation-link") == url
