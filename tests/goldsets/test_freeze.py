"""Freezing: rule, exclusions, digest, immutability, all-or-nothing."""

from __future__ import annotations

from io import StringIO
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from hypothesis import given, settings
from hypothesis import strategies as st

from goldsets.exports import goldset_version_verify
from goldsets.freeze import FreezeRule, decide_gold
from goldsets.models import GoldenItem, GoldenSetVersion
from goldsets.services import NothingToFreeze, goldset_version_build, goldset_version_freeze_request
from touchstone.errors import ImmutableObject
from touchstone.immutability import immutability_override

from .conftest import label_items

pytestmark = pytest.mark.django_db


def freeze(published, name="gs", **rule):
    version = goldset_version_freeze_request(name=name, policy_version=published, rule=FreezeRule(**rule))
    return goldset_version_build(version_id=version.pk)


@pytest.mark.parametrize(("labels", "adjudicated", "rule", "expected"), [
    (["a", "a", "a"], None, "majority", ("a", "unanimous", None)),
    (["a", "a", "b"], None, "majority", ("a", "majority", None)),
    (["a", "b", "c"], None, "majority", (None, None, "no_majority")),
    (["a", "a", "b", "b"], None, "majority", (None, None, "no_majority")),
    (["a", "b", "c"], "c", "majority", ("c", "adjudicated", None)),
    (["a", "a"], None, "majority", (None, None, "fewer_labels")),
    (["a", "a", "b"], None, "unanimous", (None, None, "not_unanimous")),
    (["a", "a", "b", "c"], None, "plurality", ("a", "majority", None)),
    (["a", "b", "c"], None, "plurality", (None, None, "tie")),
])
def test_decide_gold(labels, adjudicated, rule, expected):
    decision = decide_gold(labels, adjudicated, FreezeRule(rule=rule))
    assert (decision.gold_label, decision.decided_by, decision.excluded_because) == expected


def test_freeze_takes_qualifying_items_with_their_gold(labelled, published):
    version = freeze(published)
    assert version.status == "frozen" and version.number == 1
    assert version.item_count == 31  # 20 unanimous + 10 majority + 1 adjudicated
    assert version.excluded == {"fewer_labels": 5, "no_majority": 4}
    assert version.label_distribution == {"insult": 15, "not_harassment": 10, "threat": 6}
    adjudicated = GoldenItem.objects.get(version=version, decided_by="adjudicated")
    assert adjudicated.gold_label == "threat" and len(adjudicated.labels) == 4
    assert list(GoldenItem.objects.filter(version=version).values_list("external_id", flat=True)) == sorted(
        GoldenItem.objects.filter(version=version).values_list("external_id", flat=True))
    stats = version.stats
    assert stats["pairable_units"] == 31
    assert 0 < stats["krippendorff_alpha"]["value"] < 1
    assert stats["krippendorff_alpha"]["ci_low"] < stats["krippendorff_alpha"]["value"]
    assert {row["vendor"] for row in stats["vendors"]} == {"acme"}  # the adjudicator is the gold, not rated
    assert goldset_version_verify(version=version) == version.digest


def test_digest_is_stable_and_sensitive(labelled, published):
    first = freeze(published)
    again = freeze(published)
    # the same data freezes to the same digest, which makes the second freeze "unchanged", not v2
    assert again.status == "unchanged" and again.parent == first and again.digest == first.digest
    stricter = freeze(published, name="strict", rule="unanimous")
    assert stricter.digest != first.digest and stricter.item_count == 21


def test_frozen_versions_and_items_never_change(labelled, published):
    version = freeze(published)
    version.changelog = "edited"
    with pytest.raises(ImmutableObject):
        version.save()
    with pytest.raises(ImmutableObject):
        GoldenSetVersion.objects.filter(pk=version.pk).update(changelog="x")
    with pytest.raises(ImmutableObject):
        version.delete()
    item = GoldenItem.objects.filter(version=version).first()
    item.gold_label = "threat"
    with pytest.raises(ImmutableObject):
        item.save()
    with pytest.raises(ImmutableObject):
        GoldenItem.objects.filter(version=version).update(gold_label="threat")
    with pytest.raises(ImmutableObject):
        GoldenItem.objects.filter(version=version).delete()


def test_zero_qualifying_items_is_a_clear_error_and_leaves_no_frozen_version(published):
    label_items(published, [["insult", "threat"]] * 3)
    with pytest.raises(NothingToFreeze, match=r"left out: fewer_labels 3"):
        freeze(published)
    failed = GoldenSetVersion.objects.get()
    assert failed.status == "failed" and failed.number is None and "fewer_labels" in failed.failure_reason
    assert not GoldenItem.objects.exists()


def test_a_failure_midway_rolls_back_every_item(labelled, published):
    version = goldset_version_freeze_request(name="gs", policy_version=published, rule=FreezeRule())
    with mock.patch("goldsets.services._statistics", side_effect=RuntimeError("disk on fire")), \
            pytest.raises(RuntimeError):
        goldset_version_build(version_id=version.pk)
    version.refresh_from_db()
    assert version.status == "failed" and "disk on fire" in version.failure_reason
    assert not GoldenItem.objects.exists()
    rerun = freeze(published)
    assert rerun.status == "frozen" and rerun.number == 1


def test_tampered_items_make_verification_fail_loudly(labelled, published):
    from django.db import connection

    from goldsets.exports import DigestMismatch

    version = freeze(published)
    # What a bad manual fix would do in a database restored without its triggers, or edited past them.
    with immutability_override("test: tamper"), connection.cursor() as cursor:
        cursor.execute("UPDATE goldsets_goldenitem SET gold_label = 'threat' WHERE position = 0")
    with pytest.raises(DigestMismatch, match="refusing to export"):
        goldset_version_verify(version=version)


def test_cli_freeze_stats_and_diff(labelled, published, tmp_path, cli_user):
    out = StringIO()
    call_command("goldset", "freeze", "gs", "--policy", "harassment", stdout=out)
    assert "froze gs v1: 31 items, digest" in out.getvalue()
    assert "left out: fewer_labels 5, no_majority 4" in out.getvalue()
    call_command("goldset", "freeze", "gs", "--policy", "harassment", "--min-labels", "2", stdout=out)
    out = StringIO()
    call_command("goldset", "stats", "gs", "--version", "1", "--json", stdout=out)
    import json

    stats = json.loads(out.getvalue())
    assert stats["items"] == 31 and stats["labels"]["insult"] == 15
    for key in ("fleiss_kappa", "gwet_ac1", "krippendorff_alpha"):
        assert set(stats[key]) >= {"value", "ci_low", "ci_high"}
    out = StringIO()
    call_command("goldset", "diff", "gs", "1", "2", stdout=out)
    assert "added 5, removed 0, gold_label_changed 0, unchanged 31" in out.getvalue()
    with pytest.raises(CommandError, match="No golden set 'nope'"):
        call_command("goldset", "stats", "nope")
    with pytest.raises(CommandError, match="has no frozen version 9"):
        call_command("goldset", "stats", "gs", "--version", "9")


def test_cli_freeze_export_list_and_hidden_gold_print_json(labelled, published, tmp_path, cli_user):
    import json

    out = StringIO()
    call_command("goldset", "freeze", "gs", "--policy", "harassment", "--json", stdout=out)
    frozen = json.loads(out.getvalue())
    version = GoldenSetVersion.objects.get(golden_set__name="gs", number=1)
    assert frozen == {"golden_set": "gs", "version": 1, "request": version.pk, "status": "frozen", "items": 31,
                      "digest": version.digest, "same_as": None, "label_distribution": version.label_distribution,
                      "excluded": {"fewer_labels": 5, "no_majority": 4}, "frozen_at": version.frozen_at.isoformat()}
    out = StringIO()
    call_command("goldset", "freeze", "gs", "--policy", "harassment", "--json", stdout=out)
    again = json.loads(out.getvalue())
    assert again["status"] == "unchanged" and again["same_as"] == 1 and again["digest"] == version.digest
    out = StringIO()
    call_command("goldset", "export", "gs", "--format", "jsonl", "--output", str(tmp_path / "gs.jsonl"), "--json",
                 stdout=out)
    export = json.loads(out.getvalue())
    assert export["items"] == 31 and export["digest_verified"] and export["path"] == str(tmp_path / "gs.jsonl")
    assert len((tmp_path / "gs.jsonl").read_text().splitlines()) == 31
    out = StringIO()
    call_command("goldset", "list", "--json", stdout=out)
    (listed,) = json.loads(out.getvalue())["golden_sets"]
    assert listed["name"] == "gs" and [v["version"] for v in listed["versions"]] == [1] and listed["building"] == []
    out = StringIO()
    call_command("goldset", "hidden-gold", "gs", "--json", stdout=out)
    hidden = json.loads(out.getvalue())
    assert hidden["golden_set"] == "gs" and hidden["version"] == 1 and hidden["hidden_gold_added"] > 0


def test_recomputed_statistics_equal_the_stored_ones(labelled, published):
    from goldsets.services import goldset_version_stats_compute

    version = freeze(published)
    assert goldset_version_stats_compute(version=version) == version.stats


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.text(), min_size=5, max_size=5),
       labels=st.lists(st.tuples(st.text(), st.text(), st.text()), max_size=4))
def test_canonical_line_is_the_documented_json_dumps_form(texts, labels):
    import json

    from goldsets.freeze import canonical_line

    source, external_id, sha, gold, decided = texts
    documented = json.dumps({"source": source, "external_id": external_id, "content_sha256": sha, "gold_label": gold,
                             "decided_by": decided, "labels": sorted(list(label) for label in labels)},
                            sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"
    try:
        expected = documented.encode()
    except UnicodeEncodeError:  # lone surrogates are not text; orjson refuses them too
        return
    assert canonical_line(source=source, external_id=external_id, content_sha256=sha, gold_label=gold,
                          decided_by=decided, labels=labels) == expected


def test_watchdog_fails_only_stale_building_freezes(labelled, published):
    from datetime import timedelta

    from django.utils import timezone

    from goldsets.services import goldset_freeze_watchdog

    old = goldset_version_freeze_request(name="gs", policy_version=published, rule=FreezeRule())
    young = goldset_version_freeze_request(name="gs", policy_version=published, rule=FreezeRule())
    GoldenSetVersion.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=2))
    assert goldset_freeze_watchdog(stale_after_seconds=3600) == [old.pk]
    old.refresh_from_db()
    assert old.status == "failed" and "killed or lost" in old.failure_reason
    assert goldset_version_build(version_id=young.pk).status == "frozen"


def test_an_ordered_taxonomy_adds_ordinal_alpha(author, approver, harassment_text):
    from policies.selectors import policy_export
    from policies.services import policy_import, policy_version_publish, policy_version_submit

    text = harassment_text.replace("title:", "ordered_labels: true\ntitle:", 1)
    version = policy_import(text=text, path="severity.md", acting_user=author).version
    assert version.ordered_labels and "ordered_labels: true" in policy_export(version=version)
    policy_version_submit(version=version, acting_user=author)
    version = policy_version_publish(version=version, acting_user=approver)
    label_items(version, [["not_harassment", "insult", "insult"]] * 10 + [["threat", "threat", "hate_harassment"]] * 10
                + [["insult"] * 3] * 10 + [["not_harassment", "not_harassment", "threat"]] * 5)
    frozen = freeze(version)
    ordinal = frozen.stats["krippendorff_alpha_ordinal"]
    assert ordinal["value"] is not None and ordinal["ci_low"] <= ordinal["value"] <= ordinal["ci_high"]
    assert ordinal["value"] != frozen.stats["krippendorff_alpha"]["value"]


def test_the_rules_labelers_named_are_frozen_with_their_labels_and_exports_keep_their_shape(labelled, published,
                                                                                            tmp_path):
    from goldsets.exports import export_records
    from goldsets.selectors import goldset_version_gold_rows
    from review.models import HumanLabel

    marked = HumanLabel.objects.filter(label="insult").order_by("pk").first()
    HumanLabel.objects.filter(pk=marked.pk).update(rule_ids=["HAR-2", "HAR-1"])
    version = freeze(published)
    item = GoldenItem.objects.get(version=version, item_id=marked.item_id)
    named = [label for label in item.labels if label["rule_ids"]]
    assert [label["rule_ids"] for label in named] == [["HAR-2", "HAR-1"]]
    assert all(label["rule_ids"] == [] for label in item.labels if label not in named)
    # what the evaluation's error analysis reads: the union of the item's labels' rules
    rows = {row.item_id: row.rule_ids for row in goldset_version_gold_rows(version=version)}
    assert rows[marked.item_id] == ("HAR-1", "HAR-2") and set(rows.values()) == {(), ("HAR-1", "HAR-2")}
    # exports (pseudonymized heads and raw ids) show the labels' documented fields only
    for raw_ids in (False, True):
        record = next(r for r in export_records(version, raw_ids=raw_ids) if r["external_id"] == item.external_id)
        assert all(set(label) == {"labeler", "vendor", "label", "role", "labeled_at"} for label in record["labels"])
    assert goldset_version_verify(version=version) == version.digest
