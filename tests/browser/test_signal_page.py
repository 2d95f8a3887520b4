"""The signal page in a real browser: a pipeline user follows the signal's link from an
evaluation page, sees its versions (SIMULATED), the ROC AUC of each evaluation over time with
its interval, grouped by golden-set version, and the comparison, at 1,280 px and 390 px without
sideways scrolling; an author is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.contrib.auth.models import Group

from evaluation.services import (
    ComparisonOptions,
    EvaluationOptions,
    comparison_create,
    evaluation_create,
    signal_create,
    signal_scores_add,
    signal_version_create,
)
from tests.browser.conftest import admin_login
from tests.browser.test_home_and_layouts import WIDTHS, assert_fits
from tests.evaluation.evaluations.conftest import VIOLATING, frozen_goldset, random_gold

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def evaluations(published, django_user_model):
    users = {}
    for name, group in (("ops", "labeling ops"), ("pipe", "pipeline"), ("writer", "policy author")):
        users[name] = django_user_model.objects.create_user(name, password=f"pw-{name}", is_staff=True)
        users[name].groups.add(Group.objects.get(name=group))
    ops = users["ops"]
    gold, countries, base = random_gold(300, seed=7)
    truth = np.isin(gold, list(VIOLATING))
    rows = [(f"e{i:03d}", g, {"country": c}, [{"vendor": "acme", "role": "labeler", "label": g}], {})
            for i, (g, c) in enumerate(zip(gold, countries, strict=True))]
    goldsets = [frozen_goldset(published, rows, name="harassment-gold"),
                frozen_goldset(published, rows[:150], name="harassment-gold-hard")]
    signal = signal_create(name="prod-classifier", kind="production_classifier", policy=published.policy,
                           output_type="score", score_label="violating", acting_user=ops, owner=ops,
                           description="SIMULATED production classifier: scores drawn by Touchstone's simulator, "
                                       "not a real model.")
    made, versions = [], []
    rng = np.random.default_rng(3)
    for number, (skill, note) in enumerate(((0.0, "first model"), (0.08, "retrained with the 2026-10 data"),
                                            (0.16, "calibrated; more harassment examples")), start=1):
        version = signal_version_create(signal=signal, notes=f"SIMULATED: {note}", commit=f"4f2a9c{number}",
                                        model_card_url="https://models.example.org/prod-classifier", acting_user=ops)
        scores = np.clip(np.round(base + skill * truth + rng.normal(0, 0.05, 300), 3), 0, 1)
        signal_scores_add(version=version, rows=[{"source": "g", "external_id": f"e{i:03d}", "score": float(s)}
                                                 for i, s in enumerate(scores)], acting_user=ops)
        versions.append(version)
        for goldset in goldsets:
            made.append(evaluation_create(signal_version=version, golden_set_version=goldset,
                                          options=EvaluationOptions(threshold=0.6, n_resamples=100), acting_user=ops))
    comparison_create(signal_version_a=versions[0], signal_version_b=versions[2], golden_set_version=goldsets[0],
                      options=ComparisonOptions(threshold=0.6, n_resamples=100), acting_user=ops)
    return made


def test_the_signal_page_at_two_widths(page, evaluations, artifacts_dir: Path) -> None:
    shots = artifacts_dir / "browser"
    shots.mkdir(exist_ok=True)
    url = "/signals/prod-classifier/"

    admin_login(page, "writer", "pw-writer")
    assert page.goto(url).status == 403
    assert "evaluation.view_evaluation" in page.content()

    admin_login(page, "pipe", "pw-pipe")
    page.goto(f"/evaluations/{evaluations[0].pk}/")
    page.click("#signal-page")
    page.wait_for_url(f"**{url}")
    assert page.locator("#simulated").inner_text() == "SIMULATED"
    assert page.locator("#versions tbody tr").count() == 3
    assert page.locator("#history circle.point").count() == 6
    assert page.locator("#history line.ci").count() == 6
    assert page.locator("#history text.legend").all_text_contents() == ["harassment-gold@1", "harassment-gold-hard@1"]
    assert page.locator("#evaluations tbody tr").count() == 6
    assert page.locator("#comparisons tbody tr").count() == 1
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        assert_fits(page, f"signal page at {width}")
        page.screenshot(path=str(shots / f"62-signal-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.click(f'#evaluations a[href="/evaluations/{evaluations[-1].pk}/"]')
    page.wait_for_url(f"**/evaluations/{evaluations[-1].pk}/")
