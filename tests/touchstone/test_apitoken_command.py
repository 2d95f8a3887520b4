"""``manage.py apitoken create|list|revoke --json``: the key only at creation, never its hash."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from touchstone.models import ApiToken

pytestmark = pytest.mark.django_db


def run(*args: str) -> dict:
    out = StringIO()
    call_command("apitoken", *args, "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


def test_create_list_and_revoke_print_json_and_the_key_works(cli_user, client) -> None:
    created = run("create", "--name", "pipeline-ci", "--scope", "read")
    token = ApiToken.objects.get()
    assert created["prefix"] == token.prefix and created["key"].startswith(token.prefix)
    assert created["scope"] == "read" and created["revoked_at"] is None
    assert client.get("/api/v1/goldsets/", HTTP_AUTHORIZATION=f"Bearer {created['key']}").status_code == 200
    (listed,) = run("list")["tokens"]
    assert "key" not in listed and listed["name"] == "pipeline-ci" and listed["user"] == cli_user.get_username()
    revoked = run("revoke", token.prefix)
    assert revoked["revoked_at"] is not None
    assert client.get("/api/v1/goldsets/", HTTP_AUTHORIZATION=f"Bearer {created['key']}").status_code == 401
