"""Every query parameter and request body of the golden-set API is read through a declared
serializer: malformed input is a 400 whose JSON names the field, never a 500 (issue 13, item 6)."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

import pytest
import yaml

from goldsets.models import GoldenSetVersion
from tests.goldsets.api.test_api import client_for
from tests.goldsets.api.test_api import versions as versions  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader(versions, django_user_model):  # noqa: F811
    return client_for(django_user_model, "pipeline", "read")[0]


@pytest.fixture
def writer(labelled, published, django_user_model):
    return client_for(django_user_model, "labeling ops", "write")[0]


def assert_400_naming(response, field: str) -> list[str]:
    assert response.status_code == 400 and response["Content-Type"] == "application/json", response.content
    assert field in response.json(), response.json()
    return response.json()[field]


@pytest.mark.parametrize("limit", ["abc", "null", "-1", "1.5", "9" * 30])
def test_diff_limit_must_be_a_count(reader, limit):
    assert_400_naming(reader.get(f"/api/v1/goldsets/gs/diff/1/2/?limit={limit}"), "limit")


def test_diff_limit_counts_from_the_start(reader):
    assert reader.get("/api/v1/goldsets/gs/diff/2/1/?limit=0").json()["removed"] == []
    full = reader.get("/api/v1/goldsets/gs/diff/2/1/").json()["removed"]
    assert len(full) == 5 and reader.get("/api/v1/goldsets/gs/diff/2/1/?limit=2").json()["removed"] == full[:2]


def test_an_unknown_gold_label_is_400_listing_the_labels(reader):
    errors = assert_400_naming(reader.get("/api/v1/goldsets/gs/versions/1/items/?gold_label=bogus"), "gold_label")
    assert "'bogus'" in errors[0]
    for label in ("not_harassment", "insult", "hate_harassment", "sexual_harassment", "threat"):
        assert label in errors[0]
    # A label of the taxonomy that no item has is an empty page, not an error.
    empty = reader.get("/api/v1/goldsets/gs/versions/1/items/?gold_label=sexual_harassment")
    assert empty.status_code == 200 and empty.json()["results"] == []


@pytest.mark.parametrize(("query", "field"), [
    ({"raw_ids": "maybe"}, "raw_ids"), ({"page_size": "abc"}, "page_size"), ({"page_size": "0"}, "page_size"),
    ({"page_size": "5000"}, "page_size"), ({"gold_label": "x" * 64}, "gold_label"),
    ({"gold_label": "insult\x00"}, "gold_label")])
def test_items_query_parameters_are_checked(reader, query, field):
    assert_400_naming(reader.get(f"/api/v1/goldsets/gs/versions/1/items/?{urlencode(query)}"), field)


def test_a_forged_cursor_is_a_json_404_not_a_500(reader):
    for position in ("abc", "1 OR 1=1", "1.5"):
        cursor = base64.b64encode(urlencode({"p": position}).encode()).decode()
        response = reader.get(f"/api/v1/goldsets/gs/versions/1/items/?{urlencode({'cursor': cursor})}")
        assert response.status_code == 404 and response.json()["detail"] == "Invalid cursor", position


def test_export_raw_ids_must_be_a_boolean(reader):
    assert_400_naming(reader.get("/api/v1/goldsets/gs/versions/1/export/jsonl/?raw_ids=maybe"), "raw_ids")


@pytest.mark.parametrize(("body", "field"), [
    ({"policy": "harassment", "min_labels": 10**23}, "min_labels"),
    ({"policy": "harassment", "min_labels": 0}, "min_labels"),
    ({"policy": "harassment", "min_labels": "three"}, "min_labels"),
    ({"policy": "harassment@²"}, "policy"),  # a digit to str.isdigit, not to int()
    ({"policy": "harassment@1@2"}, "policy"),
    ({"policy": ["harassment"]}, "policy"),
    ({"policy": "harassment", "rule": "vibes"}, "rule"),
    ({"policy": "harassment", "include_llm_only": "perhaps"}, "include_llm_only"),
    ({"policy": "harassment", "changelog": "x" * 501}, "changelog"),
    ({}, "policy"),
    ([1], "non_field_errors"),
])
def test_freeze_bodies_are_checked(writer, body, field):
    assert_400_naming(writer.post("/api/v1/goldsets/gs/freeze/", body, format="json"), field)
    assert not GoldenSetVersion.objects.exists()


def test_a_golden_set_name_longer_than_its_column_is_400(writer):
    assert_400_naming(writer.post(f"/api/v1/goldsets/{'g' * 101}/freeze/", {"policy": "harassment"}, format="json"),
                      "name")


def test_paths_that_name_no_endpoint_are_json_404s(reader):
    for method, path in (("get", "/api/v1/goldsets/gs/diff/-1/2/"), ("get", "/api/v1/goldsets/%C2%84/"),
                         ("get", "/api/v1/nothing/here/"), ("post", "/api/v1/goldsets/%C2%84/freeze/")):
        response = getattr(reader, method)(path)
        assert response.status_code == 404 and response.json()["code"] == "not_found", path


def test_the_schema_documents_the_errors(admin_client):
    paths = yaml.safe_load(admin_client.get("/api/schema/").content)["paths"]
    freeze = paths["/api/v1/goldsets/{name}/freeze/"]["post"]["responses"]
    assert {"202", "400", "401", "403", "404", "429", "503"} <= set(freeze)
    assert "Retry-After" in freeze["503"]["headers"]
    items = paths["/api/v1/goldsets/{name}/versions/{number}/items/"]["get"]
    assert {p["name"] for p in items["parameters"]} >= {"gold_label", "raw_ids", "cursor", "page_size"}
    assert items["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/GoldenItemPage")
    assert {"200", "400", "404"} <= set(items["responses"])
