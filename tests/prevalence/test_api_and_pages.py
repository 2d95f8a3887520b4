"""The prevalence API (read scope lists and shows, ops compute with a write token, 400 naming the
field), the pages (permissions, forest plot, human-only beside PPI, SIMULATED badge) and the admin."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from prevalence.models import ANY_VIOLATION, PrevalenceEstimate
from prevalence.services import PrevalenceRequest, prevalence_estimate_create
from touchstone.api_tokens import api_token_create

pytestmark = pytest.mark.django_db


def _client(user, scope: str = "read") -> APIClient:
    _, key = api_token_create(user=user, name=f"{user.username}-{scope}", scope=scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def stored(worked, ops):
    sample, run, _ = worked
    return prevalence_estimate_create(sample=sample, run=run, request=PrevalenceRequest(), acting_user=ops)


def test_pipeline_reads_estimates(stored, pipeline, django_assert_max_num_queries):
    client = _client(pipeline)
    with django_assert_max_num_queries(6):
        listed = client.get("/api/v1/prevalence/estimates/", {"policy": "harassment", "label": ANY_VIOLATION})
    assert listed.status_code == 200 and len(listed.json()) == 6
    ppi = next(row for row in listed.json() if row["estimator"] == "ppi")
    assert ppi["classical"]["estimate"] == pytest.approx(0.34) and ppi["simulated"] is True
    one = client.get(f"/api/v1/prevalence/estimates/{ppi['id']}/")
    assert one.status_code == 200 and one.json()["page"] == f"/prevalence/estimates/{ppi['id']}/"
    assert client.get("/api/v1/prevalence/estimates/999999/").status_code == 404
    assert client.get("/api/v1/prevalence/estimates/", {"limit": 0}).json()["limit"]


def test_compute_needs_ops_and_a_write_token(worked, ops, pipeline, writer):
    body = {"sample": "twenty", "run": "r1", "estimators": ["ppi++"], "labels": ["insult"]}
    assert _client(ops, "read").post("/api/v1/prevalence/estimates/", body, format="json").status_code == 403
    refused = _client(pipeline, "write").post("/api/v1/prevalence/estimates/", body, format="json")
    assert refused.status_code == 403 and "prevalence.add_prevalenceestimate" in refused.json()["message"]
    assert _client(writer, "write").get("/api/v1/prevalence/estimates/").status_code == 403
    made = _client(ops, "write").post("/api/v1/prevalence/estimates/", body, format="json")
    assert made.status_code == 201, made.json()
    assert [row["estimator"] for row in made.json()] == ["ppi++"]
    assert PrevalenceEstimate.objects.count() == 1


@pytest.mark.parametrize(("body", "field"), [
    ({"run": "r1"}, "sample"),
    ({"sample": "twenty", "run": "r1", "estimators": ["magic"]}, "estimators"),
    ({"sample": "twenty", "run": "r1", "alpha": 2}, "alpha"),
    ({"sample": "twenty", "run": "r1", "labels": ["spam"]}, "label"),
])
def test_bad_input_is_a_400_naming_the_field(worked, ops, body, field):
    answer = _client(ops, "write").post("/api/v1/prevalence/estimates/", body, format="json")
    assert answer.status_code == 400
    document = answer.json()
    assert field in document or document.get("extra", {}).get("field") == field, document


def test_schema_lists_the_endpoints(ops):
    schema = APIClient()
    schema.force_authenticate(ops)
    text = schema.get("/api/schema/").content.decode()
    assert "prevalence_estimates_create" in text and "prevalence_estimate_retrieve" in text


def test_pages(stored, client, pipeline, writer):
    ppi = next(e for e in stored if e.estimator == "ppi" and e.label == ANY_VIOLATION)
    client.force_login(writer)
    assert client.get("/prevalence/harassment/").status_code == 403
    client.force_login(pipeline)
    page = client.get("/prevalence/harassment/").content.decode()
    assert "SIMULATED VOTERS" in page and 'id="forest"' in page and ">human-only</text>" in page
    assert ">any violation</text>" in page and ">not_harassment</text>" not in page  # violations' headlines
    assert "41.78 %" in page and "34.00 %" in page  # the PPI estimate and the human-only one beside it
    assert "uniform" in page and "40" in page and "40.0 %" in page  # design, N, audit share
    detail = client.get(f"/prevalence/estimates/{ppi.pk}/").content.decode()
    assert "41.78 %" in detail and "routed by rule" in detail
    assert client.get("/prevalence/nope/").status_code == 404
    home = client.get("/").content.decode()
    assert 'href="/prevalence/harassment/"' in home


def test_admin_is_read_only(stored, admin_client):
    one = stored[0]
    page = admin_client.get(f"/admin/prevalence/prevalenceestimate/{one.pk}/change/")
    assert page.status_code == 200 and "open the estimate page" in page.content.decode()
    assert admin_client.get("/admin/prevalence/prevalenceestimate/add/").status_code == 403
    assert admin_client.post(f"/admin/prevalence/prevalenceestimate/{one.pk}/delete/", {"post": "yes"}).status_code \
        == 403


def test_the_policy_page_reads_in_a_few_queries(stored, client, pipeline, django_assert_max_num_queries):
    client.force_login(pipeline)
    with django_assert_max_num_queries(12):
        assert client.get("/prevalence/harassment/").status_code == 200
