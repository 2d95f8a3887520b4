"""The evaluations API: pipelines read, ops create with a write token, authors and read tokens
are refused, bad bodies and query params are 400s naming the field, and the OpenAPI schema."""

from __future__ import annotations

import json

import pytest
import yaml

from evaluation.models import Evaluation
from evaluation.services import EvaluationOptions, evaluation_create, signal_scores_add
from touchstone.api_tokens import api_token_create

pytestmark = pytest.mark.django_db
URL = "/api/v1/evaluations/"


def _auth(user, scope: str) -> dict[str, str]:
    _, key = api_token_create(user=user, name=f"{user.username}-{scope}", scope=scope)
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


@pytest.fixture
def scored(goldset, score_version, ops):
    signal_scores_add(version=score_version, rows=[{"source": "g", "external_id": f"e{i:03d}",
                                                    "score": round((i * 37 % 200) / 200, 3)} for i in range(200)],
                      acting_user=ops)
    return score_version


def _post(client, body, auth):
    return client.post(URL, data=json.dumps(body), content_type="application/json", **auth)


def test_ops_create_with_a_write_token_and_pipelines_read(client, scored, goldset, ops, pipeline,
                                                          django_assert_max_num_queries):
    response = _post(client, {"signal": "clf", "version": 1, "golden_set": "gs", "threshold": 0.3,
                              "slice_by": "country", "n_resamples": 50}, _auth(ops, "write"))
    assert response.status_code == 201, response.content
    created = response.json()
    evaluation = Evaluation.objects.get()
    assert (created["id"], created["golden_set_version"], created["score_count"]) == (evaluation.pk, 1, 200)
    assert created["document"]["binary"] == evaluation.document["binary"]
    assert created["options"]["threshold"] == 0.3 and created["page"] == f"/evaluations/{evaluation.pk}/"
    evaluation_create(signal_version=scored, golden_set_version=goldset, options=EvaluationOptions(n_resamples=20),
                      acting_user=ops)
    read = _auth(pipeline, "read")
    with django_assert_max_num_queries(6):
        listed = client.get(URL + "?signal=clf&version=1&golden_set=gs", **read)
    assert listed.status_code == 200
    assert [row["options"]["threshold"] for row in listed.json()] == [None, 0.3]
    assert "document" not in listed.json()[0]
    assert client.get(URL + "?signal=other", **read).json() == []
    detail = client.get(f"{URL}{evaluation.pk}/", **read)
    assert detail.status_code == 200 and detail.json()["document"]["coverage"]["scored"] == 200
    missing = client.get(f"{URL}99999/", **read)
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")


def test_refusals_read_token_pipeline_author_and_anonymous(client, scored, ops, pipeline, author):
    body = {"signal": "clf", "version": 1, "golden_set": "gs", "n_resamples": 20}
    assert _post(client, body, _auth(ops, "read")).status_code == 403  # a read token only reads
    refused = _post(client, body, _auth(pipeline, "write"))
    assert refused.status_code == 403 and "evaluation.add_evaluation" in refused.json()["message"]
    refused = client.get(URL, **_auth(author, "read"))
    assert refused.status_code == 403 and "evaluation.view_evaluation" in refused.json()["message"]
    assert client.get(URL).status_code == 401
    assert not Evaluation.objects.exists()


@pytest.mark.parametrize(("body", "field"), [
    ({"threshold": 1.5}, "threshold"),
    ({"threshold": 0.2, "max_fpr": 0.1}, "max_fpr"),
    ({"n_resamples": 0}, "n_resamples"),
    ({"version": "one"}, "version"),
    ({"signal": "not a slug"}, "signal"),
    ({"violating_labels": []}, "violating_labels"),
])
def test_a_bad_body_is_a_400_naming_the_field(client, scored, ops, body, field):
    response = _post(client, {"signal": "clf", "version": 1, "golden_set": "gs", **body}, _auth(ops, "write"))
    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert not Evaluation.objects.exists()


def test_what_only_the_evaluation_can_check_is_a_400_naming_the_field(client, scored, ops):
    response = _post(client, {"signal": "clf", "version": 1, "golden_set": "gs", "violating_labels": ["spam"]},
                     _auth(ops, "write"))
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["extra"]["field"]) == ("invalid_evaluation", "violating_labels")
    missing = _post(client, {"signal": "clf", "version": 7, "golden_set": "gs"}, _auth(ops, "write"))
    assert missing.status_code == 404


@pytest.mark.parametrize("query", ["limit=0", "limit=x", "version=1", "signal=a%20b"])
def test_bad_query_params_are_a_400_naming_the_field(client, pipeline, query):
    response = client.get(f"{URL}?{query}", **_auth(pipeline, "read"))
    assert response.status_code == 400
    assert list(response.json()) == [query.split("=")[0]]


def test_the_schema_documents_the_evaluation_endpoints(client, admin_user):
    client.force_login(admin_user)
    schema = yaml.safe_load(client.get("/api/schema/").content)
    post = schema["paths"]["/api/v1/evaluations/"]["post"]
    assert {"201", "400", "403", "404"} <= set(post["responses"])
    get = schema["paths"]["/api/v1/evaluations/{evaluation_id}/"]["get"]
    assert {"200", "403", "404"} <= set(get["responses"])
    params = {p["name"] for p in schema["paths"]["/api/v1/evaluations/"]["get"]["parameters"]}
    assert {"signal", "version", "golden_set", "limit"} <= params
