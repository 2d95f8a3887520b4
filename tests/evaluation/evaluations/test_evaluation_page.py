"""The evaluation page: pipelines and ops see it (headline metrics, charts, slices, errors),
authors get a 403 naming the permission, anonymous users the sign-in page; the signal's admin
page links to it."""

from __future__ import annotations

import pytest

from evaluation.services import EvaluationOptions, evaluation_create, signal_scores_add

pytestmark = pytest.mark.django_db


@pytest.fixture
def evaluation(goldset, score_version, ops):
    signal_scores_add(version=score_version, rows=[{"source": "g", "external_id": f"e{i:03d}",
                                                    "score": round((i * 37 % 200) / 200, 3)} for i in range(195)],
                      acting_user=ops)
    return evaluation_create(signal_version=score_version, golden_set_version=goldset,
                             options=EvaluationOptions(threshold=0.6, slice_by="country", n_resamples=50),
                             acting_user=ops)


def test_pipelines_see_the_page(client, evaluation, pipeline, django_assert_max_num_queries):
    client.force_login(pipeline)
    with django_assert_max_num_queries(8):
        response = client.get(f"/evaluations/{evaluation.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    f1 = evaluation.document["binary"]["f1"]
    assert f"{f1['value']:.3f} [{f1['ci_low']:.3f}, {f1['ci_high']:.3f}]" in html
    for anchor in ('id="confusion"', 'id="pr-curve"', 'id="roc-curve"', 'id="reliability"', 'id="slices"',
                   'id="errors-by-rule"', 'id="examples"', 'class="chosen"'):
        assert anchor in html
    assert "195 / 200" in html and "<code>g:e195</code>" in html
    assert 'src="http' not in html and 'href="http' not in html  # no CDN: everything is served here


def test_authors_are_refused_and_anonymous_users_sent_to_sign_in(client, evaluation, author):
    assert client.get(f"/evaluations/{evaluation.pk}/").status_code == 302
    client.force_login(author)
    refused = client.get(f"/evaluations/{evaluation.pk}/")
    assert refused.status_code == 403 and b"evaluation.view_evaluation" in refused.content


def test_a_missing_evaluation_is_a_404(client, pipeline):
    client.force_login(pipeline)
    assert client.get("/evaluations/999/").status_code == 404


def test_the_signal_admin_page_links_to_its_evaluations(client, evaluation, ops):
    client.force_login(ops)
    html = client.get(f"/admin/evaluation/signal/{evaluation.signal_version.signal.pk}/change/").content.decode()
    assert f'href="/evaluations/{evaluation.pk}/"' in html


def test_the_admin_shows_evaluations_read_only_with_a_link_to_the_page(client, evaluation, ops):
    client.force_login(ops)
    listed = client.get("/admin/evaluation/evaluation/")
    assert listed.status_code == 200 and f'href="/evaluations/{evaluation.pk}/"' in listed.content.decode()
    shown = client.get(f"/admin/evaluation/evaluation/{evaluation.pk}/change/")
    assert shown.status_code == 200 and b'name="_save"' not in shown.content
    assert client.post(f"/admin/evaluation/evaluation/{evaluation.pk}/delete/").status_code == 403
