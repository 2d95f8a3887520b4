"""The home page: sign-in required, one section per view permission, numbers read from the apps."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from tests.home.data import home_world

pytestmark = pytest.mark.django_db

SECTION_IDS = ("policies", "runs", "queues", "goldsets")


def sections_of(html: str) -> set[str]:
    return {name for name in SECTION_IDS if f'<section id="{name}">' in html}


def staff_with(django_user_model, username: str, *, group: str | None = None, perms: tuple[str, ...] = ()):
    user = django_user_model.objects.create_user(username=username, password="pw", is_staff=True)
    if group:
        user.groups.add(Group.objects.get(name=group))
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user


def test_anonymous_and_non_staff_go_to_the_admin_login(client, django_user_model) -> None:
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
    assert "next=/" in response["Location"]
    client.force_login(django_user_model.objects.create_user(username="visitor", password="pw"))
    assert client.get("/").status_code == 302


def test_superuser_sees_every_section_with_its_numbers(admin_client, published,
                                                      django_assert_max_num_queries) -> None:
    world = home_world(published)
    with django_assert_max_num_queries(12):
        response = admin_client.get("/")
    html = response.content.decode()
    assert response.status_code == 200 and sections_of(html) == set(SECTION_IDS)
    runs = response.context["runs"]
    assert [row.run.name for row in runs] == ["run-in-progress", "run-finished"]  # in progress first
    running = runs[0]
    assert (running.done, running.expected, running.routed, running.cost) == (5, 20, 2, Decimal("0.0125"))
    assert running.percent == 25.0 and runs[1].percent == 100.0
    assert f'href="/runs/{world.running.pk}/"' in html and "$0.0125" in html

    queues = {q.name: q for q in response.context["queues"]}
    assert set(queues) == {"acme"}  # the queue with nothing waiting is left out
    assert (queues["acme"].waiting, queues["acme"].complete, queues["acme"].flagged_labelers) == (3, 1, 1)

    [gold] = response.context["goldsets"]
    alpha = world.version.stats["krippendorff_alpha"]
    assert gold.version == world.version and gold.alpha["value"] == alpha["value"]
    row = re.search(r'<td class="num alpha">(.*?)</td>\s*<td class="ci">(.*?)</td>', html, re.S)
    assert row and row.group(1) == f"{alpha['value']:.3f}"
    assert row.group(2) == f"{alpha['ci_low']:.3f} – {alpha['ci_high']:.3f}"
    assert 'href="/goldsets/harassment-gold/v1/"' in html

    [policy] = response.context["policies"]
    assert policy.published == [published] and (policy.in_review, policy.drafts) == (0, 0)


@pytest.mark.parametrize(("group", "expected"), [
    ("policy author", {"policies"}),
    ("policy approver", {"policies"}),
    ("pipeline", {"policies", "goldsets"}),
])
def test_each_role_sees_only_its_sections(client, django_user_model, published, group, expected) -> None:
    home_world(published)
    client.force_login(staff_with(django_user_model, "someone", group=group))
    html = client.get("/").content.decode()
    assert sections_of(html) == expected
    assert "run-in-progress" not in html and "ann-flagged" not in html


@pytest.mark.parametrize("perm", ["policies.view_policyversion", "runs.view_labelingrun", "review.view_reviewqueue",
                                  "goldsets.view_goldenset"])
def test_a_section_needs_its_own_view_permission(client, django_user_model, perm) -> None:
    client.force_login(staff_with(django_user_model, "one-perm", perms=(perm,)))
    html = client.get("/").content.decode()
    assert sections_of(html) == {dict(zip(("policies.view_policyversion", "runs.view_labelingrun",
                                           "review.view_reviewqueue", "goldsets.view_goldenset"),
                                          SECTION_IDS, strict=True))[perm]}


def test_staff_without_permissions_is_told_so_and_every_page_has_the_user_and_log_out(client,
                                                                                      django_user_model) -> None:
    client.force_login(staff_with(django_user_model, "bare"))
    html = client.get("/").content.decode()
    assert sections_of(html) == set() and "no permission to see" in html
    assert 'class="ts-username"' in html and "bare" in html
    assert re.search(r'<form id="logout-form" method="post" action="/admin/logout/">', html)
    admin_html = client.get("/admin/").content.decode()
    assert 'id="ts-topbar"' in admin_html and 'action="/admin/logout/"' in admin_html
