"""The monitors API: a pipeline's read token lists monitors, cycles, the series (JSON and CSV,
with the reference) and alerts; acknowledging needs ops and a write token (audited); bad query
parameters are a 400 naming the field; the endpoints are in the OpenAPI schema."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from monitoring.models import Alert
from tests.monitoring.page_world import DAYS, monitor_world, truth
from touchstone.api_tokens import api_token_create
from touchstone.models import AuditEvent

pytestmark = pytest.mark.django_db


def _client(user, scope: str = "read") -> APIClient:
    _, key = api_token_create(user=user, name=f"{user.username}-{scope}", scope=scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def world(published, author, ops):
    return monitor_world(published=published, author=author, user=ops)


@pytest.fixture
def pipeline(django_user_model):
    user = django_user_model.objects.create_user(username="pipe", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name="pipeline"))
    return user


def test_pipeline_reads_monitors_and_cycles(world, pipeline):
    client = _client(pipeline)
    [monitor] = client.get("/api/v1/monitors/").json()
    assert monitor["name"] == "harassment-daily" and monitor["open_alerts"] == 1 and monitor["simulated"] is True
    assert monitor["latest"]["label"] == "insult" and monitor["latest"]["estimator"] == "ppi++"
    assert monitor["latest"]["date"] == DAYS[11].isoformat()
    assert monitor["latest_cycle"]["state"] == "reviewing" and "audit labels in" in monitor["latest_cycle"]["reason"]
    assert client.get("/api/v1/monitors/harassment-daily/").json()["page"] == "/monitors/harassment-daily/"
    cycles = client.get("/api/v1/monitors/harassment-daily/cycles/").json()
    assert len(cycles) == 14 and cycles[0]["partition"] == DAYS[-1].isoformat()
    waiting = client.get("/api/v1/monitors/harassment-daily/cycles/", {"state": "waiting"}).json()
    assert [c["partition"] for c in waiting] == [DAYS[12].isoformat()] and "unreachable" in waiting[0]["reason"]
    one = client.get(f"/api/v1/monitors/harassment-daily/cycles/{world.cycles[10].pk}/").json()
    assert [(r["policy_version"], r["primary"]) for r in one["runs"]] == [(1, True), (2, False)]
    assert client.get("/api/v1/monitors/nope/").status_code == 404
    assert client.get(f"/api/v1/monitors/harassment-daily/cycles/{world.cycles[0].pk + 999}/").status_code == 404


def test_series_json_and_csv(world, pipeline):
    client = _client(pipeline)
    doc = client.get("/api/v1/monitors/harassment-daily/series/", {"label": "insult", "estimator": "ppi++"}).json()
    points = doc["points"]
    assert doc["columns"][:10] == ["date", "cycle", "label", "estimator", "estimate", "se", "ci_low", "ci_high",
                                   "n_human", "n_llm"]
    assert len(points) == 12 + 2  # 12 done cycles, and the overlap's second version on two of them
    first = points[0]
    assert first["date"] == "2026-11-01" and first["reference"] == truth(DAYS[0], "insult")
    assert first["ci_low"] < first["estimate"] < first["ci_high"] and first["human_only_estimate"] is not None
    assert {p["policy_version"] for p in points if not p["primary"]} == {2}
    only_primary = client.get("/api/v1/monitors/harassment-daily/series/",
                              {"label": "insult", "primary": "true"}).json()["points"]
    # two estimators on 12 days, and the reference alone on the 2 days not estimated yet
    assert len(only_primary) == 2 * 12 + 2
    assert [p["estimator"] for p in only_primary if p["date"] == "2026-11-14"] == [None]

    response = client.get("/api/v1/monitors/harassment-daily/series/", {"label": "insult", "format": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert rows[0]["date"] == "2026-11-01" and float(rows[0]["reference"]) == truth(DAYS[0], "insult")
    assert len(rows) == 2 * 12 + 2 * 2 + 2  # both estimators, the overlap on two days, the reference alone
    assert rows[-1]["estimate"] == "" and rows[-1]["reference_source"] == "the demo's known prevalence"


@pytest.mark.parametrize(("url", "params", "field"), [
    ("/api/v1/monitors/harassment-daily/series/", {"format": "xml"}, "format"),
    ("/api/v1/monitors/harassment-daily/series/", {"estimator": "magic"}, "estimator"),
    ("/api/v1/monitors/harassment-daily/series/", {"primary": "maybe"}, "primary"),
    ("/api/v1/monitors/harassment-daily/cycles/", {"state": "asleep"}, "state"),
    ("/api/v1/monitors/harassment-daily/cycles/", {"limit": "0"}, "limit"),
    ("/api/v1/alerts/", {"open": "perhaps"}, "open"),
    ("/api/v1/alerts/", {"monitor": "nope"}, "monitor"),
])
def test_bad_query_parameters_are_a_400_naming_the_field(world, pipeline, url, params, field):
    answer = _client(pipeline).get(url, params)
    assert answer.status_code == 400 and field in answer.json(), answer.json()


def test_alerts_and_acknowledge(world, pipeline, ops, author):
    alert = world.alert
    client = _client(pipeline)
    [listed] = client.get("/api/v1/alerts/", {"open": "true"}).json()
    assert listed["id"] == alert.pk and listed["delivery"]["status"] == "pending" and listed["acknowledged"] is None
    assert client.get(f"/api/v1/alerts/{alert.pk}/").json()["rule"] == "rising"
    url = f"/api/v1/alerts/{alert.pk}/acknowledge/"
    assert client.post(url, {"reason": "x"}, format="json").status_code == 403  # read token
    refused = _client(pipeline, "write").post(url, {"reason": "x"}, format="json")
    assert refused.status_code == 403 and "monitoring.change_alert" in refused.json()["message"]
    writer = _client(ops, "write")
    assert "reason" in writer.post(url, {}, format="json").json()
    assert "reason" in writer.post(url, {"reason": "   "}, format="json").json()
    done = writer.post(url, {"reason": "known campaign, blocked upstream"}, format="json")
    assert done.status_code == 200 and done.json()["acknowledged"]["by"] == ops.username
    assert writer.post(url, {"reason": "again"}, format="json").status_code == 409
    assert Alert.objects.get(pk=alert.pk).acknowledge_reason == "known campaign, blocked upstream"
    assert AuditEvent.objects.filter(event_type="alert.acknowledged", actor=ops).count() == 1
    assert client.get("/api/v1/alerts/", {"open": "true"}).json() == []
    assert client.get("/api/v1/alerts/999999/").status_code == 404
    assert _client(author).get("/api/v1/monitors/").status_code == 403  # no monitoring role


def test_schema_lists_the_endpoints(ops):
    schema = APIClient()
    schema.force_authenticate(ops)
    text = schema.get("/api/schema/").content.decode()
    for operation in ("monitors_list", "monitor_retrieve", "monitor_cycles_list", "monitor_cycle_retrieve",
                      "monitor_series_retrieve", "alerts_list", "alert_retrieve", "alert_acknowledge"):
        assert f"operationId: {operation}" in text, operation
