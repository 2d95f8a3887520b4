"""The comparison page in a real browser: a pipeline user opens it from the API's link, sees the
deltas with their intervals, McNemar, the per-slice table and the flipped items, at 1,280 px and
390 px without sideways scrolling; an author is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.contrib.auth.models import Group

from evaluation.comparison import delta_cell
from evaluation.services import (
    ComparisonOptions,
    comparison_create,
    signal_create,
    signal_scores_add,
    signal_version_create,
)
from tests.browser.conftest import admin_login
from tests.browser.test_home_and_layouts import WIDTHS, assert_fits
from tests.evaluation.evaluations.conftest import VIOLATING, frozen_goldset, random_gold

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def comparison(published, django_user_model):
    users = {}
    for name, group in (("ops", "labeling ops"), ("pipe", "pipeline"), ("writer", "policy author")):
        users[name] = django_user_model.objects.create_user(name, password=f"pw-{name}", is_staff=True)
        users[name].groups.add(Group.objects.get(name=group))
    gold, countries, scores_a = random_gold(400, seed=11)
    truth = np.isin(gold, list(VIOLATING))
    scores_b = np.clip(np.round(scores_a + 0.12 * truth + np.random.default_rng(3).normal(0, 0.08, 400), 3), 0, 1)
    rows = [(f"e{i:03d}", g, {"country": c}, [{"vendor": "acme", "role": "labeler", "label": g}], {})
            for i, (g, c) in enumerate(zip(gold, countries, strict=True))]
    goldset = frozen_goldset(published, rows, name="harassment-gold")
    signal = signal_create(name="prod-classifier", kind="production_classifier", policy=published.policy,
                           output_type="score", score_label="violating", acting_user=users["ops"])
    versions = []
    for scores, missing in ((scores_a, range(392, 400)), (scores_b, range(0, 4))):
        version = signal_version_create(signal=signal, commit="4f2a9c1", acting_user=users["ops"])
        signal_scores_add(version=version, rows=[{"source": "g", "external_id": f"e{i:03d}", "score": float(s)}
                                                 for i, s in enumerate(scores) if i not in missing],
                          acting_user=users["ops"])
        versions.append(version)
    return comparison_create(signal_version_a=versions[0], signal_version_b=versions[1], golden_set_version=goldset,
                             options=ComparisonOptions(threshold=0.5, slice_by="country", n_resamples=200),
                             acting_user=users["ops"])


def test_the_comparison_page_at_two_widths(page, comparison, artifacts_dir: Path) -> None:
    shots = artifacts_dir / "browser"
    shots.mkdir(exist_ok=True)
    url = f"/comparisons/{comparison.pk}/"

    admin_login(page, "writer", "pw-writer")
    assert page.goto(url).status == 403
    assert "evaluation.view_evaluation" in page.content()

    admin_login(page, "pipe", "pw-pipe")
    api = page.request.get(f"/api/v1/comparisons/{comparison.pk}/", headers={"Accept": "application/json"})
    assert api.status == 200 and api.json()["page"] == url
    page.goto(url)
    doc = comparison.document
    assert delta_cell(doc["binary"]["f1"])["text"] in page.inner_text("#deltas")
    assert page.locator("#delta-chart circle.delta").count() == 4
    assert page.locator("#delta-chart line.ci").count() == 4
    assert page.locator("#slices tbody tr").count() == 3
    assert page.inner_text("#coverage").strip() == "388 / 400"
    m = doc["mcnemar"]
    assert m["p_value"] < 1e-4 and page.inner_text("#mcnemar-p").strip() == "p < 0.0001"
    flipped = doc["flips"]["right_to_wrong"]["shown"] + doc["flips"]["wrong_to_right"]["shown"]
    assert flipped > 0 and page.locator("#flips tbody tr").count() == flipped
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        assert_fits(page, f"comparison page at {width}")
        page.screenshot(path=str(shots / f"61-comparison-{width}.png"), full_page=True)
