"""A stored comparison never changes: in the ORM and, by raw SQL, in the database's triggers
(SQLite here; PostgreSQL under scripts/with_postgres.sh)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from evaluation.models import Comparison
from evaluation.services import ComparisonOptions, comparison_create
from touchstone.errors import ImmutableObject
from touchstone.immutability import immutability_override

pytestmark = pytest.mark.django_db


@pytest.fixture
def comparison(goldset, score_pair, ops):
    a, b = score_pair
    return comparison_create(signal_version_a=a, signal_version_b=b, golden_set_version=goldset,
                             options=ComparisonOptions(n_resamples=20), acting_user=ops)


def _refused(sql: str, params: list) -> str:
    with pytest.raises(IntegrityError) as caught, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    return str(caught.value)


def test_the_orm_refuses_every_change(comparison):
    comparison.options = {"threshold": 0.1}
    with pytest.raises(ImmutableObject, match="immutable"):
        comparison.save()
    with pytest.raises(ImmutableObject):
        comparison.delete()
    with pytest.raises(ImmutableObject):
        Comparison.objects.filter(pk=comparison.pk).update(score_count_a=0)
    with pytest.raises(ImmutableObject):
        Comparison.objects.filter(pk=comparison.pk).delete()
    with pytest.raises(ImmutableObject):
        Comparison.objects.bulk_update([comparison], ["options"])
    assert Comparison.objects.get(pk=comparison.pk).options["threshold"] is None


def test_the_database_refuses_raw_updates_and_deletes(comparison):
    table = Comparison._meta.db_table
    assert "cannot be changed" in _refused(f"UPDATE {table} SET score_count_a = 0 WHERE id = %s", [comparison.pk])
    assert "cannot be deleted" in _refused(f"DELETE FROM {table} WHERE id = %s", [comparison.pk])
    assert Comparison.objects.get(pk=comparison.pk).score_count_a == 198
    with immutability_override("test: wipe"), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE id = %s", [comparison.pk])
    assert not Comparison.objects.exists()
