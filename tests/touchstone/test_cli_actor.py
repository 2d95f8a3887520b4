"""Every command that changes state names its actor: --user, else TOUCHSTONE_USER, else a clear error;
and the audit log then shows that actor, never "-"."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from touchstone.models import AuditEvent

pytestmark = pytest.mark.django_db

WRITES = [
    ("content", "import", "items.jsonl", "--source", "s"),
    ("sample", "create", "s", "--method", "uniform", "--size", "1", "--seed", "1"),
    ("run", "create", "r", "--sample", "s", "--prompt", "abc", "--voter", "sim:m"),
    ("run", "start", "r"),
    ("run", "pause", "r"),
    ("run", "retry-failed", "r"),
    ("labels", "import", "labels.jsonl", "--policy", "harassment"),
    ("queue", "create", "q", "--policy", "harassment", "--vendor", "v"),
    ("queue", "push", "q"),
    ("queue", "pause", "v/someone"),
    ("endpoint", "add", "sim", "--base-url", "http://127.0.0.1:9/v1"),
    ("policy", "compile", "harassment"),
    ("apitoken", "create", "--name", "t"),
    ("apitoken", "revoke", "abc"),
    ("goldset", "freeze", "gs", "--policy", "harassment"),
    ("goldset", "hidden-gold", "gs"),
]


@pytest.mark.parametrize("args", WRITES, ids=[" ".join(a[:2]) for a in WRITES])
def test_a_write_without_an_actor_is_refused_before_anything_happens(args, monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("TOUCHSTONE_USER", raising=False)
    monkeypatch.chdir(tmp_path)
    for name in ("items.jsonl", "labels.jsonl"):
        (tmp_path / name).write_text('{"external_id": "a", "components": {"text": "x"}}\n')
    with pytest.raises(CommandError, match=r"--user USERNAME \(or set TOUCHSTONE_USER\)"):
        call_command(*args, stdout=StringIO(), stderr=StringIO())
    assert not AuditEvent.objects.exists()


def test_the_actor_comes_from_the_option_or_the_environment(cli_user, django_user_model, monkeypatch,
                                                            tmp_path) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text('{"external_id": "a", "components": {"text": "x"}}\n')
    call_command("content", "import", str(items), "--source", "env", stdout=StringIO())  # TOUCHSTONE_USER
    other = django_user_model.objects.create_user(username="other", is_staff=True)
    call_command("endpoint", "add", "sim", "--base-url", "http://127.0.0.1:9/v1", "--simulator",
                 "--user", "other", stdout=StringIO())
    call_command("apitoken", "create", "--name", "t", "--for", "other", stdout=StringIO(), stderr=StringIO())
    actors = dict(AuditEvent.objects.values_list("event_type", "actor"))
    assert actors["content.imported"] == cli_user.pk
    assert actors["llm_endpoint.created"] == other.pk
    assert actors["api_token.created"] == cli_user.pk
    assert AuditEvent.objects.filter(actor=None).count() == 0


def test_queue_status_without_a_name_lists_every_queue(published) -> None:
    from review.models import ReviewQueue, Vendor

    vendor = Vendor.objects.create(name="Acme")
    for name in ("b-queue", "a-queue"):
        ReviewQueue.objects.create(name=name, policy_version=published, vendor=vendor, overlap=2)
    out = StringIO()
    call_command("queue", "status", stdout=out)
    lines = out.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == ["a-queue", "b-queue"] and "pending 0" in lines[0]
