"""``manage.py endpoint add|list --json``: one JSON document; the key's variable name, never a key."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cli_user")]


def cli_json(*args: str) -> dict:
    out = StringIO()
    call_command("endpoint", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_add_and_list_json() -> None:
    added = cli_json("add", "sim", "--base-url", "http://127.0.0.1:9/v1", "--simulator", "--price-input", "0.5",
                     "--rpm", "60", "--api-key-env", "SIM_KEY")
    assert (added["name"], added["base_url"], added["simulator"], added["requests_per_minute"]) == (
        "sim", "http://127.0.0.1:9/v1", True, 60)
    assert added["api_key_env"] == "SIM_KEY" and float(added["price_input_per_million"]) == 0.5
    cli_json("add", "real", "--base-url", "http://127.0.0.1:8/v1", "--supports-batch")
    listed = cli_json("list")["endpoints"]
    assert sorted((e["name"], e["supports_batch"]) for e in listed) == [("real", True), ("sim", False)]
    assert {e["endpoint"] for e in listed} >= {added["endpoint"]}


def test_errors_stay_command_errors() -> None:
    cli_json("add", "sim", "--base-url", "http://127.0.0.1:9/v1")
    with pytest.raises(CommandError):
        cli_json("add", "sim", "--base-url", "http://127.0.0.1:9/v1")
