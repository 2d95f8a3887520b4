"""``manage.py labels quality``: the weekly series of a labeler or of vendors, as text and JSON,
and one clear line for bad input."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.review.quality_world import quality_world

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("labels", "quality", *args, stdout=out)
    return out.getvalue()


def test_a_labeler_as_json_and_as_text(published) -> None:
    world = quality_world(published, weeks=6)
    doc = json.loads(run("--labeler", "Acme BPO/bob", "--weeks", "6", "--json"))
    assert doc["labeler"]["external_id"] == "bob" and len(doc["weeks"]) == 6 and doc["drift"] is True
    assert doc["weeks"][-1]["accuracy"]["successes"] == 6
    text = run("--labeler", "bob", "--weeks", "4")
    assert text.startswith("labeler Acme BPO/bob: 4 ISO weeks (UTC)") and "DRIFT" in text
    lines = [line for line in text.splitlines() if "-W" in line and "DRIFT" in line]
    assert len(lines) == 2  # the header line and the drifting week
    assert world.bob.external_id in text


def test_vendors_list_their_labelers_drift(published) -> None:
    quality_world(published, weeks=5)
    docs = json.loads(run("--json"))
    assert [doc["vendor"]["name"] for doc in docs] == ["Acme BPO"]
    assert [row["drift"] for row in docs[0]["labelers"]] == [False, True, False]
    text = run("--vendor", "Acme BPO", "--weeks", "3")
    assert "vendor Acme BPO" in text and "labeler bob (active): latest gold week" in text and "drift rule:" in text


@pytest.mark.parametrize(("args", "message"), [
    (("--weeks", "0"), "--weeks: must be a whole number from 1 to 104"),
    (("--weeks", "200"), "--weeks: must be a whole number from 1 to 104"),
    (("--vendor", "Nobody"), "vendor 'Nobody': no such vendor"),
    (("--labeler", "zed"), "labeler 'zed': no such labeler"),
    (("--vendor", "Acme BPO", "--labeler", "bob"), "give one of them, not both"),
])
def test_bad_input_is_one_clear_line(published, args, message) -> None:
    quality_world(published, weeks=1)
    with pytest.raises(CommandError, match=message):
        run(*args)
