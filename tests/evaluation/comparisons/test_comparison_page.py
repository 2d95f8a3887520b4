"""The comparison page: pipelines and ops see it (deltas with CIs, McNemar, per label, slices,
flips), authors get a 403 naming the permission, anonymous users the sign-in page; the admin
lists comparisons read-only with a link to the page."""

from __future__ import annotations

import pytest

from evaluation.comparison import delta_cell, p_text
from evaluation.services import ComparisonOptions, comparison_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def comparison(goldset, label_pair, ops):
    a, b = label_pair
    return comparison_create(signal_version_a=a, signal_version_b=b, golden_set_version=goldset,
                             options=ComparisonOptions(slice_by="country", n_resamples=50), acting_user=ops)


@pytest.mark.parametrize("who", ["pipeline", "ops"])
def test_pipelines_and_ops_see_the_page(client, comparison, request, who, django_assert_max_num_queries):
    client.force_login(request.getfixturevalue(who))
    with django_assert_max_num_queries(10):
        response = client.get(f"/comparisons/{comparison.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    doc = comparison.document
    assert delta_cell(doc["binary"]["f1"])["text"] in html
    for anchor in ('id="deltas"', 'id="delta-chart"', 'id="mcnemar"', 'id="per-label"', 'id="slices"', 'id="flips"',
                   'class="ci"'):
        assert anchor in html
    assert f"b = {doc['mcnemar']['b']} (A right, B wrong)" in html
    assert f'id="mcnemar-p">p = {p_text(doc["mcnemar"]["p_value"])}<' in html
    assert "197 / 200" in html and "SIMULATED VOTERS" not in html
    first = doc["flips"]["wrong_to_right"]["items"][0]["ref"]
    assert f"<code>{first}</code>" in html
    assert html.count('class="right-to-wrong"') == doc["flips"]["right_to_wrong"]["shown"]
    assert 'src="http' not in html and 'href="http' not in html  # no CDN
    item_id = doc["flips"]["wrong_to_right"]["items"][0]["item_id"]
    linked = f'href="/admin/content/contentitem/{item_id}/change/"' in html
    assert linked == request.getfixturevalue(who).has_perm("content.view_contentitem")


def test_authors_are_refused_and_anonymous_users_sent_to_sign_in(client, comparison, author):
    assert client.get(f"/comparisons/{comparison.pk}/").status_code == 302
    client.force_login(author)
    refused = client.get(f"/comparisons/{comparison.pk}/")
    assert refused.status_code == 403 and b"evaluation.view_evaluation" in refused.content


def test_a_missing_comparison_is_a_404(client, pipeline):
    client.force_login(pipeline)
    assert client.get("/comparisons/999/").status_code == 404


def test_a_version_from_simulated_voters_gets_the_badge(client, comparison, pipeline, monkeypatch):
    from evaluation import views

    monkeypatch.setattr(views, "signal_version_simulated_voters",
                        lambda version: ["sim-model@simulator"] if version.number == 2 else [])
    client.force_login(pipeline)
    html = client.get(f"/comparisons/{comparison.pk}/").content.decode()
    assert 'id="simulated"' in html and "B from simulated voters (sim-model@simulator)" in html


def test_the_admin_shows_comparisons_read_only_with_a_link_to_the_page(client, comparison, ops):
    client.force_login(ops)
    listed = client.get("/admin/evaluation/comparison/")
    assert listed.status_code == 200 and f'href="/comparisons/{comparison.pk}/"' in listed.content.decode()
    assert client.get(f"/admin/evaluation/comparison/{comparison.pk}/delete/").status_code == 403


def test_the_signal_admin_page_links_to_its_comparisons(client, comparison, ops):
    client.force_login(ops)
    html = client.get(f"/admin/evaluation/signal/{comparison.signal_version_a.signal.pk}/change/").content.decode()
    assert f'class="comparison-link" href="/comparisons/{comparison.pk}/"' in html
    assert "comparison" in html and "jury@2 vs jury@1" in html
