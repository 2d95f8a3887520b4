"""Every page and page action checks the permission the API and the services check: a matrix of
role × page × action, with the expected answer read from the role table, not from has_perm."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from evaluation.services.signals import signal_create_unchecked
from review.models import Labeler
from runs.models import Judgement, JudgementStatus
from tests.home.data import home_world
from tests.monitoring.factories import alert_make, cycle_make, monitor_make
from touchstone.roles import ROLE_PERMISSIONS

pytestmark = pytest.mark.django_db

ROLES = [*ROLE_PERMISSIONS, None]  # None: staff with no role


def _pages(world) -> list[tuple[str, str, str]]:
    """(method, url, the permissions it needs, checked in this order)."""
    run, gold = world.running.pk, world.version
    name, number = gold.golden_set.name, gold.number
    return [
        ("get", f"/runs/{run}/", "runs.view_labelingrun"),
        ("get", f"/runs/{run}/progress.json", "runs.view_labelingrun"),
        ("post", f"/runs/{run}/retry-failed/", "runs.change_labelingrun"),
        ("get", "/queues/", "review.view_reviewqueue"),
        ("get", f"/vendors/{world.waiting_queue.vendor_id}/quality/", "review.view_reviewqueue"),
        ("get", f"/labelers/{Labeler.objects.get(external_id='ann-flagged').pk}/quality/",
         ("review.view_reviewqueue", "review.view_labeler")),
        ("get", f"/goldsets/{name}/", "goldsets.view_goldenset"),
        ("get", f"/goldsets/{name}/v{number}/", "goldsets.view_goldenset"),
        ("get", f"/goldsets/{name}/v{number}/export.jsonl", "goldsets.view_goldenset"),
        ("get", f"/goldsets/{name}/v{number}/export.csv?raw_ids=1",
         ("goldsets.view_goldenset", "goldsets.view_raw_labeler_ids")),
        ("get", f"/goldsets/{name}/diff/{number}/{number}/", "goldsets.view_goldenset"),
        ("get", f"/api/v1/goldsets/{name}/versions/{number}/export/jsonl/", "goldsets.view_goldenset"),
        ("get", "/signals/clf/", "evaluation.view_evaluation"),
        ("get", "/monitors/", "monitoring.view_monitor"),
        ("get", f"/monitors/{world.monitor.name}/", "monitoring.view_monitor"),
        ("get", "/measurement/", "monitoring.view_monitor"),
        ("post", f"/monitors/{world.monitor.name}/alerts/{world.alert.pk}/acknowledge/", "monitoring.change_alert"),
    ]


@pytest.mark.parametrize("role", ROLES, ids=[str(r) for r in ROLES])
def test_role_page_action_matrix(client, django_user_model, published, role) -> None:
    world = home_world(published)
    world.monitor = monitor_make(policy=published.policy, user=django_user_model.objects.create_user(username="mon"))
    world.alert = alert_make(cycle_make(world.monitor, world.monitor.start_date))
    signal_create_unchecked(name="clf", kind="production_classifier", policy=published.policy, output_type="score",
                            score_label="violating", description="", owner=None, acting_user=None)
    user = django_user_model.objects.create_user(username=f"u-{role}", password="pw", is_staff=True)
    if role:
        user.groups.add(Group.objects.get(name=role))
    client.force_login(user)
    granted = set(ROLE_PERMISSIONS.get(role, []))
    voter = world.running.voters.first()
    Judgement.objects.filter(run=world.running, voter=voter).update(status=JudgementStatus.FAILED)
    failed_before = Judgement.objects.filter(status=JudgementStatus.FAILED).count()
    wrong = []
    for method, url, needs in _pages(world):
        needs = (needs,) if isinstance(needs, str) else needs
        response = getattr(client, method)(url)
        missing = [perm for perm in needs if perm not in granted]
        if (response.status_code in (200, 302)) == bool(missing) or (missing and response.status_code != 403):
            wrong.append((url, missing, response.status_code))
        if missing:
            body = b"".join(response.streaming_content) if response.streaming else response.content
            assert missing[0].encode() in body, (url, body[-300:])  # the refusal names the permission
    assert wrong == [], wrong
    retried = "runs.change_labelingrun" in granted
    assert Judgement.objects.filter(status=JudgementStatus.FAILED).count() == (0 if retried else failed_before)


def test_labeler_ids_on_the_queues_page_only_with_view_labeler(client, django_user_model, published) -> None:
    home_world(published)
    ops = django_user_model.objects.create_user(username="ops", password="pw", is_staff=True)
    ops.groups.add(Group.objects.get(name="labeling ops"))
    client.force_login(ops)
    assert "ann-flagged" in client.get("/queues/").content.decode()
    ops.groups.get(name="labeling ops").permissions.remove(
        *ops.groups.get().permissions.filter(codename="view_labeler"))
    client.force_login(ops)
    html = client.get("/queues/").content.decode()
    assert "ann-flagged" not in html


def test_labeling_ops_see_review_queues_tasks_and_hidden_gold_in_the_admin(client, django_user_model) -> None:
    ops = django_user_model.objects.create_user(username="ops", password="pw", is_staff=True)
    ops.groups.add(Group.objects.get(name="labeling ops"))
    client.force_login(ops)
    for model in ("reviewqueue", "reviewtask", "hiddengolditem"):
        assert client.get(f"/admin/review/{model}/").status_code == 200, model
    index = client.get("/admin/").content.decode()
    assert "/admin/review/reviewqueue/" in index and "/admin/review/hiddengolditem/" in index
