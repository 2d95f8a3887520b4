"""The comparisons API: pipelines read, ops create with a write token, authors and read tokens
are refused, bad bodies and query params are 400s naming the field, and the OpenAPI schema."""

from __future__ import annotations

import json

import pytest
import yaml

from evaluation.models import Comparison
from evaluation.services import ComparisonOptions, comparison_create
from touchstone.api_tokens import api_token_create

pytestmark = pytest.mark.django_db
URL = "/api/v1/comparisons/"
BODY = {"signal_a": "clf", "version_a": 1, "version_b": 2, "golden_set": "gs", "n_resamples": 50}


def _auth(user, scope: str) -> dict[str, str]:
    _, key = api_token_create(user=user, name=f"{user.username}-{scope}", scope=scope)
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def _post(client, body, auth):
    return client.post(URL, data=json.dumps(body), content_type="application/json", **auth)


def test_ops_create_with_a_write_token_and_pipelines_read(client, score_pair, goldset, ops, pipeline,
                                                          django_assert_max_num_queries):
    response = _post(client, {**BODY, "threshold": 0.4, "slice_by": "country"}, _auth(ops, "write"))
    assert response.status_code == 201, response.content
    created = response.json()
    comparison = Comparison.objects.get()
    assert (created["id"], created["signal_b"], created["version_b"]) == (comparison.pk, "clf", 2)
    assert (created["score_count_a"], created["score_count_b"]) == (198, 198)
    assert created["document"]["binary"] == comparison.document["binary"]
    assert created["document"]["coverage"]["both"] == 197
    assert created["options"]["threshold"] == 0.4 and created["page"] == f"/comparisons/{comparison.pk}/"
    a, b = score_pair
    comparison_create(signal_version_a=b, signal_version_b=a, golden_set_version=goldset,
                      options=ComparisonOptions(n_resamples=20), acting_user=ops)
    read = _auth(pipeline, "read")
    with django_assert_max_num_queries(6):
        listed = client.get(URL + "?signal=clf&golden_set=gs", **read)
    assert listed.status_code == 200
    assert [(row["version_a"], row["options"]["threshold"]) for row in listed.json()] == [(2, None), (1, 0.4)]
    assert "document" not in listed.json()[0]
    assert client.get(URL + "?signal=other", **read).json() == []
    detail = client.get(f"{URL}{comparison.pk}/", **read)
    assert detail.status_code == 200 and detail.json()["document"]["mcnemar"] == comparison.document["mcnemar"]
    missing = client.get(f"{URL}99999/", **read)
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")


def test_refusals_read_token_pipeline_author_and_anonymous(client, score_pair, ops, pipeline, author):
    assert _post(client, BODY, _auth(ops, "read")).status_code == 403  # a read token only reads
    refused = _post(client, BODY, _auth(pipeline, "write"))
    assert refused.status_code == 403 and "evaluation.add_evaluation" in refused.json()["message"]
    refused = client.get(URL, **_auth(author, "read"))
    assert refused.status_code == 403 and "evaluation.view_evaluation" in refused.json()["message"]
    assert client.get(URL).status_code == 401
    assert not Comparison.objects.exists()


@pytest.mark.parametrize(("body", "field"), [
    ({"threshold": 1.5}, "threshold"),
    ({"threshold": 0.2, "max_fpr": 0.1}, "max_fpr"),
    ({"n_resamples": 0}, "n_resamples"),
    ({"version_b": "two"}, "version_b"),
    ({"signal_a": "not a slug"}, "signal_a"),
    ({"seed": -1}, "seed"),
])
def test_a_bad_body_is_a_400_naming_the_field(client, score_pair, ops, body, field):
    response = _post(client, {**BODY, **body}, _auth(ops, "write"))
    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert not Comparison.objects.exists()


def test_what_only_the_comparison_can_check_is_a_400_naming_the_field(client, label_pair, score_pair, ops):
    response = _post(client, {**BODY, "signal_a": "jury", "threshold": 0.5}, _auth(ops, "write"))
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["extra"]["field"]) == ("invalid_comparison", "threshold")
    mixed = _post(client, {**BODY, "signal_b": "jury"}, _auth(ops, "write"))
    assert mixed.status_code == 201, mixed.content  # a score signal against a label signal: the binary question
    assert mixed.json()["document"]["binary"]["recall_at_fpr"]["reason"] == "needs two score signals"
    missing = _post(client, {**BODY, "version_b": 7}, _auth(ops, "write"))
    assert missing.status_code == 404


@pytest.mark.parametrize("query", ["limit=0", "limit=x", "signal=a%20b", "golden_set=%21"])
def test_bad_query_params_are_a_400_naming_the_field(client, pipeline, query):
    response = client.get(f"{URL}?{query}", **_auth(pipeline, "read"))
    assert response.status_code == 400
    assert list(response.json()) == [query.split("=")[0]]


def test_the_schema_documents_the_comparison_endpoints(client, admin_user):
    client.force_login(admin_user)
    schema = yaml.safe_load(client.get("/api/schema/").content)
    post = schema["paths"]["/api/v1/comparisons/"]["post"]
    assert {"201", "400", "403", "404"} <= set(post["responses"])
    get = schema["paths"]["/api/v1/comparisons/{comparison_id}/"]["get"]
    assert {"200", "403", "404"} <= set(get["responses"])
    params = {p["name"] for p in schema["paths"]["/api/v1/comparisons/"]["get"]["parameters"]}
    assert {"signal", "golden_set", "limit"} <= params
