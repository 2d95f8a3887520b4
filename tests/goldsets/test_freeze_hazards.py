"""Quieter freeze hazards: a re-freeze with nothing new says "unchanged" and makes no version;
a freeze whose process was killed shows as stale and is failed by the next request."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from goldsets.freeze import FreezeRule
from goldsets.models import GoldenItem, GoldenSetVersion, GoldenSetVersionStatus
from goldsets.services import goldset_version_build, goldset_version_freeze_request

from .conftest import label_items

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cli_user")]


def cli(*args: str) -> str:
    out = StringIO()
    call_command("goldset", *args, stdout=out)
    return out.getvalue()


def test_refreezing_with_nothing_new_returns_the_existing_version(labelled, published):
    first = cli("freeze", "gs", "--policy", "harassment")
    assert "froze gs v1" in first
    again = cli("freeze", "gs", "--policy", "harassment")
    v1 = GoldenSetVersion.objects.get(number=1)
    assert f"unchanged: the same items, gold labels and labels as gs v1 (digest {v1.digest})" in again
    request = GoldenSetVersion.objects.get(status=GoldenSetVersionStatus.UNCHANGED)
    assert request.number is None and request.parent == v1 and request.digest == v1.digest
    assert not GoldenItem.objects.filter(version=request).exists()
    assert GoldenSetVersion.objects.filter(status=GoldenSetVersionStatus.FROZEN).count() == 1
    # Building it again is a no-op, and a real change makes v2.
    assert goldset_version_build(version_id=request.pk).status == GoldenSetVersionStatus.UNCHANGED
    label_items(published, [["insult"] * 3], start=100)
    assert "froze gs v2" in cli("freeze", "gs", "--policy", "harassment")


def test_the_api_reports_an_unchanged_freeze_with_the_version_it_matched(labelled, published):
    from goldsets.api.serializers import FreezeSerializer

    goldset_version_build(version_id=goldset_version_freeze_request(
        name="gs", policy_version=published, rule=FreezeRule()).pk)
    same = goldset_version_build(version_id=goldset_version_freeze_request(
        name="gs", policy_version=published, rule=FreezeRule()).pk)
    data = FreezeSerializer(same).data
    assert (data["status"], data["number"], data["parent"]) == ("unchanged", None, 1)


def test_a_killed_freeze_shows_as_stale_and_the_next_request_fails_it(labelled, published):
    killed = goldset_version_freeze_request(name="gs", policy_version=published, rule=FreezeRule())
    listed = cli("list")
    assert f"freeze #{killed.pk} building for 0 min" in listed and "in progress" in listed
    GoldenSetVersion.objects.filter(pk=killed.pk).update(created_at=timezone.now() - timedelta(hours=2))
    listed = cli("list")
    assert f"freeze #{killed.pk} building for 2 h 00 min" in listed and "STALE" in listed

    assert "froze gs v1" in cli("freeze", "gs", "--policy", "harassment")
    killed.refresh_from_db()
    assert killed.status == GoldenSetVersionStatus.FAILED
    assert "noticed by a new freeze request" in killed.failure_reason
    assert f"freeze #{killed.pk}" not in cli("list")
