"""The labelers-over-time pages (a vendor's, a labeler's) and the drift flags on the queues page."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from review.charts import weekly_chart
from review.quality_series import Proportion, Week
from tests.review.quality_world import quality_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops(client, django_user_model):
    user = django_user_model.objects.create_user(username="ops", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name="labeling ops"))
    client.force_login(user)
    return user


def test_labeler_page_shows_the_series_the_drift_and_the_misses(client, ops, published,
                                                                 django_assert_max_num_queries) -> None:
    world = quality_world(published, weeks=6)
    with django_assert_max_num_queries(12):
        response = client.get(f"/labelers/{world.bob.pk}/quality/?weeks=6")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('class="weekly"') == 8 and html.count('class="drift"') >= 2  # chart band + table row
    assert 'id="drift-status">flagged' in html and "trailing level 0.88" in html
    assert html.count("<tr class=\"drift\"") == 1
    assert "/admin/content/contentitem/" in html  # misses link to their items
    ann = client.get(f"/labelers/{world.ann.pk}/quality/").content.decode()
    assert 'id="drift-status">no' in ann


def test_vendor_page_lists_labelers_with_their_latest_gold_week(client, ops, published,
                                                                django_assert_max_num_queries) -> None:
    world = quality_world(published, weeks=5)
    with django_assert_max_num_queries(12):
        html = client.get(f"/vendors/{world.vendor.pk}/quality/?weeks=5").content.decode()
    assert f'/labelers/{world.bob.pk}/quality/?weeks=5">bob' in html
    assert html.count('class="weekly"') == 8
    ops.groups.get().permissions.remove(*ops.groups.get().permissions.filter(codename="view_labeler"))
    client.force_login(ops)
    html = client.get(f"/vendors/{world.vendor.pk}/quality/").content.decode()
    assert ">bob<" not in html and 'class="weekly"' in html  # the vendor's series, no identities


@pytest.mark.parametrize("weeks", ["0", "105", "abc", "-3", "2.5"])
def test_a_bad_weeks_parameter_is_a_400_naming_it(client, ops, published, weeks) -> None:
    world = quality_world(published, weeks=1)
    for url in (f"/labelers/{world.bob.pk}/quality/", f"/vendors/{world.vendor.pk}/quality/"):
        response = client.get(url, {"weeks": weeks})
        assert response.status_code == 400 and b"weeks" in response.content


def test_unknown_labeler_or_vendor_is_a_404(client, ops) -> None:
    assert client.get("/labelers/999/quality/").status_code == 404
    assert client.get("/vendors/999/quality/").status_code == 404


def test_queues_page_flags_the_drifting_labeler_and_links_the_pages(client, ops, published) -> None:
    world = quality_world(published, weeks=6)
    html = client.get("/queues/").content.decode()
    flags = html.split('class="drift-flags"')[1].split("</p>")[0]
    assert f'/labelers/{world.bob.pk}/quality/' in flags and ">bob<" in flags and ">ann<" not in flags
    assert f'/vendors/{world.vendor.pk}/quality/' in html
    rows = html.split('class="labelers"')[1].split("</table>")[0].split("<tr")
    assert [("badge drift" in row) for row in rows if "/labelers/" in row] == [False, True, False]  # ann, bob, cy


def test_chart_breaks_the_band_at_empty_weeks_and_marks_drift() -> None:
    from datetime import date, timedelta

    monday = date(2026, 11, 2)
    weeks = [Week(start=monday + timedelta(weeks=i), accuracy=Proportion.of(c, n))
             for i, (c, n) in enumerate([(8, 10), (9, 10), (0, 0), (7, 10)])]
    weeks[3].drift, weeks[3].drift_reason = True, "2026-W48: below"
    svg = weekly_chart(weeks, "accuracy", show_trailing=True)
    assert svg.count('class="ci"') == 2 and svg.count('class="drift"') == 1 and "2026-W48: below" in svg
    assert weekly_chart([Week(start=monday)], "kappa").count("No data") == 1
