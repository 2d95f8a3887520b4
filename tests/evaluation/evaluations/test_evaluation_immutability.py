"""A stored evaluation never changes: in the ORM and, by raw SQL, in the database's triggers
(SQLite here; PostgreSQL under scripts/with_postgres.sh)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from evaluation.models import Evaluation
from evaluation.services import EvaluationOptions, evaluation_create, signal_scores_add
from touchstone.errors import ImmutableObject
from touchstone.immutability import immutability_override

pytestmark = pytest.mark.django_db


@pytest.fixture
def evaluation(goldset, score_version, ops):
    signal_scores_add(version=score_version, rows=[{"source": "g", "external_id": f"e{i:03d}", "score": i / 200}
                                                   for i in range(200)], acting_user=ops)
    return evaluation_create(signal_version=score_version, golden_set_version=goldset,
                             options=EvaluationOptions(n_resamples=20), acting_user=ops)


def _refused(sql: str, params: list) -> str:
    with pytest.raises(IntegrityError) as caught, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    return str(caught.value)


def test_the_orm_refuses_every_change(evaluation):
    evaluation.options = {"threshold": 0.1}
    with pytest.raises(ImmutableObject, match="immutable"):
        evaluation.save()
    with pytest.raises(ImmutableObject):
        evaluation.delete()
    with pytest.raises(ImmutableObject):
        Evaluation.objects.filter(pk=evaluation.pk).update(score_count=0)
    with pytest.raises(ImmutableObject):
        Evaluation.objects.filter(pk=evaluation.pk).delete()
    with pytest.raises(ImmutableObject):
        Evaluation.objects.bulk_update([evaluation], ["options"])
    assert Evaluation.objects.get(pk=evaluation.pk).options["threshold"] is None


def test_the_database_refuses_raw_updates_and_deletes(evaluation):
    table = Evaluation._meta.db_table
    assert "cannot be changed" in _refused(f"UPDATE {table} SET score_count = 0 WHERE id = %s", [evaluation.pk])
    assert "cannot be deleted" in _refused(f"DELETE FROM {table} WHERE id = %s", [evaluation.pk])
    assert Evaluation.objects.get(pk=evaluation.pk).score_count == 200
    with immutability_override("test: wipe"), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE id = %s", [evaluation.pk])
    assert not Evaluation.objects.filter(pk=evaluation.pk).exists()
