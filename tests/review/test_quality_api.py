"""The labelers-over-time API: the series as JSON with a read-scoped token, 400 naming the field
on a bad ``weeks``, the permissions of the pages, and the OpenAPI schema."""

from __future__ import annotations

import pytest
import yaml
from django.contrib.auth.models import Group

from tests.review.quality_world import quality_world
from touchstone.api_tokens import api_token_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops_token(django_user_model) -> tuple:
    user = django_user_model.objects.create_user("ops-api")
    user.groups.add(Group.objects.get(name="labeling ops"))
    _, key = api_token_create(user=user, name="read", scope="read")
    return user, {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def test_labeler_series_with_a_read_token(client, published, ops_token, django_assert_max_num_queries) -> None:
    world = quality_world(published, weeks=6)
    _, auth = ops_token
    with django_assert_max_num_queries(12):
        response = client.get(f"/api/v1/labelers/{world.bob.pk}/quality/", {"weeks": 6}, **auth)
    assert response.status_code == 200, response.content
    doc = response.json()
    assert doc["labeler"]["external_id"] == "bob" and doc["labeler"]["vendor"] == "Acme BPO"
    assert doc["window"]["weeks"] == 6 and len(doc["weeks"]) == 6
    assert doc["drift"] is True and doc["latest_gold_week"] == doc["weeks"][-1]["week"]
    last = doc["weeks"][-1]
    assert last["accuracy"] == {"successes": 6, "n": 16, "value": 0.375, "ci_low": pytest.approx(0.1848, abs=1e-4),
                                "ci_high": pytest.approx(0.6136, abs=1e-4)}
    assert last["trailing"]["n"] == 64 and "trailing level" in last["drift_reason"]
    assert set(last["kappa"]) == {"n", "value", "ci_low", "ci_high", "se", "reason"}
    assert "Wilson" in doc["drift_rule"]


def test_vendor_series_lists_labelers_only_to_those_who_may_see_them(client, published, ops_token) -> None:
    world = quality_world(published, weeks=5)
    user, auth = ops_token
    doc = client.get(f"/api/v1/vendors/{world.vendor.pk}/quality/", **auth).json()
    assert doc["vendor"]["name"] == "Acme BPO" and len(doc["weeks"]) == 12
    assert [(row["labeler"]["external_id"], row["drift"]) for row in doc["labelers"]] == [
        ("ann", False), ("bob", True), ("cy", False)]
    group = user.groups.get()
    group.permissions.remove(*group.permissions.filter(codename="view_labeler"))
    doc = client.get(f"/api/v1/vendors/{world.vendor.pk}/quality/", **auth).json()
    assert doc["labelers"] == [] and doc["weeks"]
    refused = client.get(f"/api/v1/labelers/{world.bob.pk}/quality/", **auth)
    assert refused.status_code == 403 and "review.view_labeler" in refused.json()["message"]


@pytest.mark.parametrize("weeks", ["0", "105", "abc", "-1", "2.5"])
def test_bad_weeks_is_a_400_naming_the_field(client, published, ops_token, weeks) -> None:
    world = quality_world(published, weeks=1)
    _, auth = ops_token
    for url in (f"/api/v1/labelers/{world.bob.pk}/quality/", f"/api/v1/vendors/{world.vendor.pk}/quality/"):
        response = client.get(url, {"weeks": weeks}, **auth)
        assert response.status_code == 400 and "weeks" in response.json(), response.content


def test_unknown_ids_are_404s_and_other_roles_are_refused(client, published, ops_token, django_user_model) -> None:
    _, auth = ops_token
    for url in ("/api/v1/labelers/999/quality/", "/api/v1/vendors/999/quality/",
                f"/api/v1/vendors/{2**40}/quality/"):
        response = client.get(url, **auth)
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    pipeline = django_user_model.objects.create_user("pipe")
    pipeline.groups.add(Group.objects.get(name="pipeline"))
    _, key = api_token_create(user=pipeline, name="p", scope="read")
    refused = client.get("/api/v1/vendors/1/quality/", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert refused.status_code == 403 and "review.view_reviewqueue" in refused.json()["message"]
    assert client.get("/api/v1/vendors/1/quality/").status_code in (401, 403)


def test_the_schema_documents_both_endpoints(admin_client) -> None:
    schema = yaml.safe_load(admin_client.get("/api/schema/").content)
    for path in ("/api/v1/labelers/{labeler_id}/quality/", "/api/v1/vendors/{vendor_id}/quality/"):
        get = schema["paths"][path]["get"]
        assert {"200", "400", "403", "404"} <= set(get["responses"])
        assert any(p["name"] == "weeks" and p["in"] == "query" for p in get["parameters"])
        error = get["responses"]["400"]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/Error"}
    assert "drift" in schema["components"]["schemas"]["Week"]["properties"]
