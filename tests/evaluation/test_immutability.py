"""Signals' fixed fields, versions with scores and scores themselves refuse changes: in the ORM
and, by raw SQL, in the database's triggers (SQLite here; PostgreSQL under with_postgres.sh)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from evaluation.models import Signal, SignalScore, SignalVersion
from evaluation.services import signal_scores_add
from touchstone.errors import ImmutableObject
from touchstone.immutability import immutability_override

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored(label_version, items, ops):
    signal_scores_add(version=label_version, rows=[{"source": "t", "external_id": "i0", "label": "insult"}],
                      acting_user=ops)
    return label_version


def _refused(sql: str, params: list) -> str:
    with pytest.raises(IntegrityError) as caught, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    return str(caught.value)


def test_a_signal_keeps_its_name_and_meaning_but_not_its_description(label_signal):
    label_signal.description = "the jury"
    label_signal.save()
    label_signal.name = "renamed"
    with pytest.raises(ImmutableObject, match="name cannot change"):
        label_signal.save()
    with pytest.raises(ImmutableObject):
        Signal.objects.filter(pk=label_signal.pk).update(output_type="score")
    with pytest.raises(ImmutableObject):
        Signal.objects.bulk_update([label_signal], ["name"])
    table = Signal._meta.db_table
    assert "cannot change" in _refused(f"UPDATE {table} SET name = 'x' WHERE id = %s", [label_signal.pk])
    assert "cannot change" in _refused(f"UPDATE {table} SET kind = 'rule' WHERE id = %s", [label_signal.pk])
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET description = 'raw' WHERE id = %s", [label_signal.pk])
    assert Signal.objects.get(pk=label_signal.pk).name == "jury"


def test_a_version_without_scores_can_change_and_one_with_scores_cannot(label_version, scored):
    assert scored.pk == label_version.pk
    scored.refresh_from_db()
    scored.notes = "edited"
    with pytest.raises(ImmutableObject, match="has scores"):
        scored.save()
    with pytest.raises(ImmutableObject):
        scored.delete()
    with pytest.raises(ImmutableObject):
        SignalVersion.objects.filter(pk=scored.pk).update(notes="x")
    with pytest.raises(ImmutableObject):
        SignalVersion.objects.filter(pk=scored.pk).delete()
    with pytest.raises(ImmutableObject):
        SignalVersion.objects.bulk_update([scored], ["notes"])
    table = SignalVersion._meta.db_table
    assert "cannot be changed" in _refused(f"UPDATE {table} SET notes = 'x' WHERE id = %s", [scored.pk])
    assert "cannot be deleted" in _refused(f"DELETE FROM {table} WHERE id = %s", [scored.pk])
    assert SignalVersion.objects.get(pk=scored.pk).notes == "first"


def test_an_unscored_version_stays_editable(score_version):
    score_version.notes = "fixed a typo"
    score_version.save()
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {SignalVersion._meta.db_table} SET \"commit\" = 'def' WHERE id = %s",
                       [score_version.pk])
    score_version.refresh_from_db()
    assert (score_version.notes, score_version.commit) == ("fixed a typo", "def")


def test_scores_are_write_once_rows(scored, items):
    score = SignalScore.objects.get(version=scored)
    score.label = "threat"
    with pytest.raises(ImmutableObject):
        score.save()
    with pytest.raises(ImmutableObject):
        score.delete()
    with pytest.raises(ImmutableObject):
        SignalScore.objects.filter(pk=score.pk).update(label="threat")
    with pytest.raises(ImmutableObject):
        SignalScore.objects.all().delete()
    with pytest.raises(ImmutableObject):
        SignalScore.objects.bulk_update([score], ["label"])
    table = SignalScore._meta.db_table
    assert "write-once" in _refused(f"UPDATE {table} SET label = 'threat' WHERE id = %s", [score.pk])
    assert "write-once" in _refused(f"DELETE FROM {table} WHERE id = %s", [score.pk])
    # appending stays possible: another item of the same version
    SignalScore.objects.create(version=scored, item=items[1], label="threat")
    assert SignalScore.objects.filter(version=scored).count() == 2
    assert SignalScore.objects.get(pk=score.pk).label == "insult"


def test_the_database_refuses_a_second_score_of_an_item_and_a_score_outside_the_unit_interval(scored, items):
    with pytest.raises(IntegrityError), transaction.atomic():
        SignalScore.objects.create(version=scored, item=items[0], label="threat")
    with pytest.raises(IntegrityError), transaction.atomic():
        SignalScore.objects.create(version=scored, item=items[2], score=1.5, label="insult")
    with pytest.raises(IntegrityError), transaction.atomic():
        SignalScore.objects.create(version=scored, item=items[3])  # says nothing


def test_only_the_override_of_a_wipe_goes_past_the_triggers(scored):
    table = SignalScore._meta.db_table
    with immutability_override("test: wipe"), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE version_id = %s", [scored.pk])
    assert not SignalScore.objects.filter(version=scored).exists()
    with connection.cursor() as cursor:  # no scores left: the version is a draft again
        cursor.execute(f"UPDATE {SignalVersion._meta.db_table} SET notes = 'x' WHERE id = %s", [scored.pk])
