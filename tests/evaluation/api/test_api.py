"""The signals API: reads for pipelines, score batches for ops with a write token, 400s naming
the row index and field with nothing stored, and the OpenAPI schema."""

from __future__ import annotations

import json

import pytest
import yaml

from evaluation.models import SignalScore
from evaluation.services import API_MAX_ROWS
from touchstone.api_tokens import api_token_create

pytestmark = pytest.mark.django_db
SCORES = "/api/v1/signals/clf/versions/1/scores/"


def _auth(user, scope: str) -> dict[str, str]:
    _, key = api_token_create(user=user, name=f"{user.username}-{scope}", scope=scope)
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def _post(client, rows, auth):
    return client.post(SCORES, data=json.dumps(rows), content_type="application/json", **auth)


def test_pipelines_read_signals_and_versions(client, score_version, label_version, pipeline,
                                             django_assert_max_num_queries):
    auth = _auth(pipeline, "read")
    with django_assert_max_num_queries(6):
        listed = client.get("/api/v1/signals/", **auth)
    assert listed.status_code == 200
    assert [(s["name"], s["output_type"], s["score_label"], s["version_count"]) for s in listed.json()] == [
        ("clf", "score", "violating", 1), ("jury", "label", "", 1)]
    with django_assert_max_num_queries(8):
        detail = client.get("/api/v1/signals/clf/", **auth).json()
    assert [(v["version"], v["commit"], v["scores"]) for v in detail["versions"]] == [(1, "abc123", 0)]
    version = client.get("/api/v1/signals/clf/versions/1/", **auth).json()
    assert (version["model_card_url"], version["policy_version"]) == ("https://example.org/card", "harassment@1")
    assert client.get("/api/v1/signals/nope/", **auth).json()["code"] == "not_found"
    assert client.get("/api/v1/signals/clf/versions/9/", **auth).status_code == 404


def test_ops_add_a_batch_with_a_write_token(client, score_version, items, ops):
    rows = [{"source": "t", "external_id": f"i{i}", "score": i / 10} for i in range(3)]
    rows.append({"source": "t", "external_id": "ghost", "score": 0.5})
    response = _post(client, rows, _auth(ops, "write"))
    assert response.status_code == 201, response.content
    assert response.json() == {"import_id": response.json()["import_id"], "imported": 3, "unknown": 1,
                               "unknown_items": [{"source": "t", "external_id": "ghost", "line": 3}]}
    page = client.get(SCORES + "?page_size=2", **_auth(ops, "read")).json()
    assert [(r["external_id"], r["score"]) for r in page["results"]] == [("i0", 0.0), ("i1", 0.1)]
    assert client.get(page["next"], **_auth(ops, "read")).json()["results"][0]["external_id"] == "i2"


def test_a_bad_row_is_a_400_naming_index_and_field_and_nothing_is_stored(client, score_version, items, ops):
    rows = [{"source": "t", "external_id": "i0", "score": 0.2},
            {"source": "t", "external_id": "i1", "score": 0.3, "label": "spam"}]
    response = _post(client, rows, _auth(ops, "write"))
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_rows"
    assert (body["extra"]["index"], body["extra"]["field"]) == (1, "label")
    assert body["message"].startswith("rows[1].label: 'spam' is not in the taxonomy")
    assert not SignalScore.objects.exists()


def test_the_body_must_be_a_bounded_list(client, score_version, items, ops):
    auth = _auth(ops, "write")
    assert _post(client, {"source": "t"}, auth).json() == {"rows": ['Expected a list of items but got type "dict".']}
    too_many = [{"source": "t", "external_id": "i0", "score": 0.1}] * (API_MAX_ROWS + 1)
    response = _post(client, too_many, auth)
    assert response.status_code == 400 and "rows" in response.json()
    assert not SignalScore.objects.exists()


@pytest.mark.parametrize(("role", "scope", "status"), [
    ("pipeline", "read", 403), ("pipeline", "write", 403), ("ops", "read", 403), ("ops", "write", 201)])
def test_who_may_add_scores(client, score_version, items, ops, pipeline, role, scope, status):
    user = {"ops": ops, "pipeline": pipeline}[role]
    response = _post(client, [{"source": "t", "external_id": "i0", "score": 0.4}], _auth(user, scope))
    assert response.status_code == status
    assert SignalScore.objects.count() == (1 if status == 201 else 0)


def test_users_without_the_view_permission_read_nothing(client, score_version, author):
    assert client.get("/api/v1/signals/", **_auth(author, "read")).status_code == 403
    assert client.get("/api/v1/signals/").status_code in (401, 403)


def test_the_schema_documents_the_batch_endpoint(admin_client):
    schema = yaml.safe_load(admin_client.get("/api/schema/").content)
    post = schema["paths"]["/api/v1/signals/{name}/versions/{number}/scores/"]["post"]
    assert {"201", "400", "403", "404"} <= set(post["responses"])
    assert post["requestBody"]["content"]["application/json"]["schema"]["type"] == "array"
    assert "/api/v1/signals/{name}/" in schema["paths"]
