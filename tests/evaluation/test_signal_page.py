"""The signal page: metadata, versions with their links, one headline estimate per evaluation
over time (with its CI) and the comparisons; pipelines and ops see it, authors get a 403 naming
the permission, an unknown name is the HTML 404; a version made from a run of simulator voters,
and a signal whose description says SIMULATED, carry the badge."""

from __future__ import annotations

import re

import pytest

from evaluation.metrics import estimate_text
from evaluation.selectors import signal_declared_simulated
from evaluation.services import (
    ComparisonOptions,
    EvaluationOptions,
    comparison_create,
    evaluation_create,
    signal_create,
    signal_scores_add,
    signal_version_create,
)
from tests.evaluation.evaluations.conftest import frozen_goldset, random_gold
from tests.evaluation.evaluations.test_evaluation_of_a_run import run_version  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db


def _scores(version, shift: float, ops) -> None:
    _, _, scores = random_gold(200)
    signal_scores_add(version=version, rows=[{"source": "g", "external_id": f"e{i:03d}",
                                              "score": float(min(1.0, s + shift))} for i, s in enumerate(scores)],
                      acting_user=ops)


@pytest.fixture
def history(published, score_signal, score_version, ops):
    """Two versions of the score signal, three evaluations on two golden-set versions, one comparison."""
    gold, countries, _ = random_gold(200)
    rows = [(f"e{i:03d}", g, {"country": c}, [{"vendor": "acme", "role": "labeler", "label": g}], {})
            for i, (g, c) in enumerate(zip(gold, countries, strict=True))]
    first, second = frozen_goldset(published, rows, name="gs-a"), frozen_goldset(published, rows[:120], name="gs-b")
    _scores(score_version, 0.0, ops)
    newer = signal_version_create(signal=score_signal, notes="retrained on more data", acting_user=ops)
    _scores(newer, 0.05, ops)
    options = EvaluationOptions(threshold=0.6, n_resamples=50)
    evaluations = [evaluation_create(signal_version=v, golden_set_version=g, options=options, acting_user=ops)
                   for v, g in ((score_version, first), (newer, first), (newer, second))]
    comparison = comparison_create(signal_version_a=score_version, signal_version_b=newer, golden_set_version=first,
                                   options=ComparisonOptions(threshold=0.6, n_resamples=50), acting_user=ops)
    return evaluations, comparison


def test_the_page_shows_versions_evaluations_over_time_and_comparisons(client, history, pipeline,
                                                                        django_assert_max_num_queries):
    evaluations, comparison = history
    client.force_login(pipeline)
    with django_assert_max_num_queries(9):
        response = client.get("/signals/clf/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Production classifier" in html and "violating" in html and "ROC AUC" in html
    versions = html.split('id="versions"')[1].split("</table>")[0]
    assert versions.index('id="v2"') < versions.index('id="v1"')  # newest first
    assert "retrained on more data" in versions and "<code>abc123</code>" in versions
    assert 'href="https://example.org/card"' in versions and versions.count("<td class=\"num\">200</td>") == 2
    chart = html.split('id="history"')[1].split("</figure>")[0]
    assert chart.count('class="point"') == 3 and chart.count('class="ci"') == 3
    assert "gs-a@1" in chart and "gs-b@1" in chart
    for e in evaluations:
        auc = e.document["scores"]["roc_auc"]
        assert f'href="/evaluations/{e.pk}/"' in html and estimate_text(auc) in html
        assert f"{auc['value']:.3f} [{auc['ci_low']:.3f}, {auc['ci_high']:.3f}]" in chart
    table = html.split('id="evaluations"')[1].split("</table>")[0]
    assert [int(pk) for pk in re.findall(r'href="/evaluations/(\d+)/"', table)] == [e.pk for e in evaluations][::-1]
    assert f'href="/comparisons/{comparison.pk}/"' in html and "clf@2 vs clf@1" in html
    assert "SIMULATED" not in html
    assert 'src="http' not in html


def test_a_label_signal_plots_f1_and_says_when_there_is_nothing_yet(client, label_version, pipeline):
    client.force_login(pipeline)
    html = client.get("/signals/jury/").content.decode()
    assert "F1 (positive class)" in html and 'id="history"' not in html
    assert "No evaluation yet" in html and "No comparison yet" in html


def test_a_run_of_simulator_voters_gets_the_badge_with_a_link_to_the_run(client, request, ops, pipeline):
    version, goldset, _, _ = request.getfixturevalue("run_version")
    evaluation = evaluation_create(signal_version=version, golden_set_version=goldset,
                                   options=EvaluationOptions(n_resamples=50), acting_user=ops)
    client.force_login(pipeline)
    html = client.get(f"/signals/{version.signal.name}/").content.decode()
    row = html.split(f'id="v{version.number}"')[1].split("</tr>")[0]
    assert "SIMULATED" in row and "sim-a@sim, sim-b@sim, sim-c@sim" in row
    assert f'href="/runs/{version.labeling_run_id}/"' in row and f"prompt version {version.prompt_version_id}" in row
    f1 = evaluation.document["binary"]["f1"]
    assert f"{f1['value']:.3f}" in html.split('id="history"')[1] and "F1 (positive class)" in html
    assert 'id="simulated"' not in html  # the signal itself is not declared simulated


def test_a_classifier_described_as_simulated_gets_the_badge(client, published, ops, pipeline):
    signal = signal_create(name="sim-clf", kind="production_classifier", policy=published.policy,
                           output_type="score", score_label="violating", acting_user=ops,
                           description="SIMULATED production classifier: scores drawn by the simulator.")
    signal_version_create(signal=signal, notes="binormal scores", acting_user=ops)
    assert signal_declared_simulated(signal=signal)
    client.force_login(pipeline)
    html = client.get("/signals/sim-clf/").content.decode()
    assert 'id="simulated"' in html
    assert "SIMULATED" in html.split('id="v1"')[1].split("</tr>")[0]


def test_notes_starting_with_simulated_mark_only_that_version(published, ops):
    signal = signal_create(name="plain", kind="rule", policy=published.policy, output_type="label", acting_user=ops)
    real = signal_version_create(signal=signal, notes="a real rule", acting_user=ops)
    fake = signal_version_create(signal=signal, notes="  simulated: made up", acting_user=ops)
    assert not signal_declared_simulated(signal=signal)
    assert not signal_declared_simulated(signal=signal, version=real)
    assert signal_declared_simulated(signal=signal, version=fake)


def test_authors_are_refused_and_anonymous_users_sent_to_sign_in(client, score_version, author):
    assert client.get("/signals/clf/").status_code == 302
    client.force_login(author)
    refused = client.get("/signals/clf/")
    assert refused.status_code == 403 and b"evaluation.view_evaluation" in refused.content


def test_an_unknown_signal_is_the_html_404(client, pipeline):
    client.force_login(pipeline)
    response = client.get("/signals/nope/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


def test_the_evaluation_comparison_admin_and_home_pages_link_to_it(client, history, ops):
    evaluations, comparison = history
    client.force_login(ops)
    link = 'href="/signals/clf/"'
    assert link in client.get(f"/evaluations/{evaluations[0].pk}/").content.decode()
    assert client.get(f"/comparisons/{comparison.pk}/").content.decode().count(link) == 2
    signal_pk = evaluations[0].signal_version.signal_id
    assert link in client.get(f"/admin/evaluation/signal/{signal_pk}/change/").content.decode()
    home = client.get("/").content.decode()
    assert 'id="signals"' in home and link in home


def test_the_chart_draws_an_undefined_value_as_a_cross_and_starts_its_axis_below_the_lowest_bound():
    from evaluation.charts import history_chart

    points = [{"id": 1, "href": "/evaluations/1/", "x_label": "v1", "date": "11-30 01:00", "group": "gs@1",
               "estimate": {"value": 0.72, "ci_low": 0.61, "ci_high": 0.8}},
              {"id": 2, "href": "/evaluations/2/", "x_label": "v2", "date": "11-30 02:00", "group": "gs@2",
               "estimate": {"value": None, "reason": "no positive item in the gold set"}}]
    svg = history_chart(points, metric="ROC AUC")
    assert svg.count('class="point"') == 1 and svg.count('class="ci"') == 1
    assert 'class="undefined"' in svg and "undefined (no positive item in the gold set)" in svg
    # the axis runs from 0.5 (0.61 → 0.6 − 0.1) to 1 by 0.1
    assert ">0.5</text>" in svg and ">0.7</text>" in svg and ">0.25</text>" not in svg
    assert svg.count('class="legend"') == 2 and 'href="/evaluations/2/"' in svg


def test_a_declared_simulated_classifier_is_marked_on_its_evaluation_and_comparison_pages(client, published, ops,
                                                                                           pipeline, history):
    from evaluation.selectors import signal_version_simulated_voters

    evaluations, comparison = history
    real = comparison.signal_version_a
    assert signal_version_simulated_voters(real) == []  # a real classifier's page carries no badge
    client.force_login(pipeline)
    assert "SIMULATED VOTERS" not in client.get(f"/evaluations/{evaluations[0].pk}/").content.decode()
    signal = signal_create(name="sim-clf", kind="production_classifier", policy=published.policy,
                           output_type="score", score_label="violating", acting_user=ops,
                           description="SIMULATED production classifier: scores drawn by the simulator.")
    version = signal_version_create(signal=signal, notes="binormal scores", acting_user=ops)
    _scores(version, 0.0, ops)
    evaluation = evaluation_create(signal_version=version, golden_set_version=evaluations[0].golden_set_version,
                                   options=EvaluationOptions(threshold=0.6, n_resamples=50), acting_user=ops)
    assert signal_version_simulated_voters(version) == ["sim-clf (declared SIMULATED: no model made these scores)"]
    assert "SIMULATED VOTERS" in client.get(f"/evaluations/{evaluation.pk}/").content.decode()
    compared = comparison_create(signal_version_a=real, signal_version_b=version,
                                 golden_set_version=evaluations[0].golden_set_version,
                                 options=ComparisonOptions(threshold=0.6, n_resamples=50), acting_user=ops)
    assert 'id="simulated"' in client.get(f"/comparisons/{compared.pk}/").content.decode()
