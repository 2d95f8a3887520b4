"""The golden-set API with scoped tokens: reads, pagination, exports, diff, freeze, refusals."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from rest_framework.test import APIClient

from goldsets.freeze import FreezeRule
from goldsets.models import GoldenSetVersion
from goldsets.services import goldset_version_build, goldset_version_freeze_request
from touchstone.api_tokens import api_token_create, api_token_revoke
from touchstone.models import ApiToken

pytestmark = pytest.mark.django_db


@pytest.fixture
def versions(labelled, published):
    first = goldset_version_build(version_id=goldset_version_freeze_request(
        name="gs", policy_version=published, rule=FreezeRule()).pk)
    second = goldset_version_build(version_id=goldset_version_freeze_request(
        name="gs", policy_version=published, rule=FreezeRule(min_labels=2)).pk)
    return first, second


def client_for(django_user_model, role, scope, username=None):
    user = django_user_model.objects.create_user(username or f"{role}-{scope}".replace(" ", "-"))
    user.groups.add(Group.objects.get(name=role))
    _, key = api_token_create(user=user, name="t", scope=scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client, key


def test_read_token_reads_everything_and_cannot_write(versions, django_user_model, django_assert_max_num_queries):
    client, _ = client_for(django_user_model, "pipeline", "read")
    assert [g["name"] for g in client.get("/api/v1/goldsets/").json()] == ["gs"]
    assert [v["number"] for v in client.get("/api/v1/goldsets/gs/").json()] == [2, 1]
    with django_assert_max_num_queries(6):
        latest = client.get("/api/v1/goldsets/gs/versions/latest/").json()
    assert latest["version"] == 2 and latest["items"] == 36 and latest["krippendorff_alpha"]["ci_low"] is not None
    response = client.post("/api/v1/goldsets/gs/freeze/", {"policy": "harassment"}, format="json")
    assert response.status_code == 403 and "read-only" in response.json()["detail"]
    assert GoldenSetVersion.objects.count() == 2


def test_items_use_cursor_pagination_and_filter_by_gold(versions, django_user_model, django_assert_max_num_queries):
    client, _ = client_for(django_user_model, "pipeline", "read")
    seen, url = [], "/api/v1/goldsets/gs/versions/1/items/?page_size=10"
    while url:
        with django_assert_max_num_queries(8):
            page = client.get(url).json()
        seen += page["results"]
        url = page["next"]
    assert len(seen) == 31 and [i["position"] for i in seen] == list(range(31))
    assert all(label["labeler"].startswith("L-") for item in seen for label in item["labels"])
    threats = client.get("/api/v1/goldsets/gs/versions/1/items/?gold_label=threat").json()["results"]
    assert {item["gold_label"] for item in threats} == {"threat"} and len(threats) == 6
    assert client.get("/api/v1/goldsets/gs/versions/1/items/?raw_ids=1").status_code == 403


def test_export_and_diff(versions, django_user_model):
    client, _ = client_for(django_user_model, "pipeline", "read")
    response = client.get("/api/v1/goldsets/gs/versions/1/export/jsonl/")
    assert response.status_code == 200 and response["X-Golden-Set-Digest"] == versions[0].digest
    assert len(b"".join(response.streaming_content).splitlines()) == 31
    csv_response = client.get("/api/v1/goldsets/gs/versions/2/export/csv/")
    assert len(b"".join(csv_response.streaming_content).splitlines()) == 37
    assert client.get("/api/v1/goldsets/gs/versions/1/export/xml/").json()["code"] == "not_found"
    diff = client.get("/api/v1/goldsets/gs/diff/1/2/").json()
    assert diff["counts"] == {"added": 5, "removed": 0, "gold_label_changed": 0, "unchanged": 31}


def test_write_token_freezes_on_the_queue(labelled, published, django_user_model, django_capture_on_commit_callbacks,
                                          settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from touchstone.celery import app

    app.conf.task_always_eager = True
    try:
        client, _ = client_for(django_user_model, "labeling ops", "write")
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/api/v1/goldsets/new/freeze/", {"policy": "harassment", "min_labels": 2},
                                   format="json")
        assert response.status_code == 202
        status = client.get(f"/api/v1/goldsets/new/freezes/{response.json()['id']}/").json()
        assert status["status"] == "frozen" and status["number"] == 1 and status["item_count"] == 36
        bad = client.post("/api/v1/goldsets/new/freeze/", {"policy": "harassment", "rule": "vibes"}, format="json")
        assert bad.status_code == 400 and "rule" in bad.json()
    finally:
        app.conf.task_always_eager = False


def test_unauthenticated_revoked_and_unknown(versions, django_user_model):
    assert APIClient().get("/api/v1/goldsets/").status_code in (401, 403)
    client, key = client_for(django_user_model, "pipeline", "read")
    api_token_revoke(token=ApiToken.objects.get())
    assert client.get("/api/v1/goldsets/").status_code == 401
    fresh, _ = client_for(django_user_model, "pipeline", "read", username="p2")
    missing = fresh.get("/api/v1/goldsets/gs/versions/9/")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert ApiToken.objects.filter(key_sha256__contains=key).count() == 0  # only the hash is stored


def test_cli_creates_a_token_shown_once(django_user_model):
    django_user_model.objects.create_user("pipe")
    out = StringIO()
    call_command("apitoken", "create", "--user", "pipe", "--name", "nightly", stdout=out, stderr=StringIO())
    key = out.getvalue().splitlines()[1]
    assert key.startswith("ts_") and ApiToken.objects.get().prefix == key[:11]
    listing = StringIO()
    call_command("apitoken", "list", stdout=listing)
    assert key not in listing.getvalue() and "nightly" in listing.getvalue()


def test_schema_and_offline_docs(admin_client):
    import yaml

    paths = yaml.safe_load(admin_client.get("/api/schema/").content)["paths"]
    assert "/api/v1/goldsets/{name}/versions/{number}/items/" in paths
    docs = admin_client.get("/api/docs/").content.decode()
    assert "swagger-ui" in docs and "cdn" not in docs.lower() and "https://" not in docs
