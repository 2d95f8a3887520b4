"""Golden-set pages and downloads (server side; the browser test looks at them too)."""

from __future__ import annotations

import json

import pytest

from goldsets.freeze import FreezeRule
from goldsets.services import goldset_version_build, goldset_version_freeze_request

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_versions(labelled, published):
    first = goldset_version_build(version_id=goldset_version_freeze_request(
        name="gs", policy_version=published, rule=FreezeRule()).pk)
    second = goldset_version_build(version_id=goldset_version_freeze_request(
        name="gs", policy_version=published, rule=FreezeRule(min_labels=2)).pk)
    return first, second


def test_version_page_shows_stats_charts_diff_and_exports(admin_client, two_versions, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        page = admin_client.get("/goldsets/gs/v2/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "36" in html and "Krippendorff" in html and "95% CI" in html
    assert html.count("<svg") == 3 and "cdn" not in html.lower()
    assert "v1 → v2: added 5, removed 0, gold_label_changed 0, unchanged 31" in html
    assert "/goldsets/gs/v2/export.parquet" in html
    assert admin_client.get("/goldsets/gs/").status_code == 200


def test_downloads_stream_verified_exports(admin_client, two_versions):
    response = admin_client.get("/goldsets/gs/v1/export.jsonl")
    assert response["X-Golden-Set-Digest"] == two_versions[0].digest
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert len(lines) == 31 and json.loads(lines[0])["labels"][0]["labeler"].startswith("L-")
    parquet = admin_client.get("/goldsets/gs/v1/export.parquet")
    assert b"".join(parquet.streaming_content)[:4] == b"PAR1"
    assert admin_client.get("/goldsets/gs/v1/export.xlsx").status_code == 404


def test_unknown_set_or_version_is_a_404_page(admin_client, two_versions):
    response = admin_client.get("/goldsets/gs/v7/")
    assert response.status_code == 404 and b"has no frozen version 7" in response.content
    assert admin_client.get("/goldsets/nope/").status_code == 404


def test_pages_need_staff(client, two_versions):
    assert client.get("/goldsets/gs/v1/").status_code == 302


def test_diff_page_lists_added_items(admin_client, two_versions):
    page = admin_client.get("/goldsets/gs/diff/1/2/").content.decode()
    assert "gs: v1 → v2" in page and page.count("<code>s:item-") == 5
    assert admin_client.get("/goldsets/gs/diff/1/9/").status_code == 404
    assert "/goldsets/gs/diff/1/2/" in admin_client.get("/goldsets/gs/").content.decode()
