"""A stored prevalence estimate never changes: in the ORM and, by raw SQL, in the database's
triggers (SQLite here; PostgreSQL under scripts/with_postgres.sh)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from prevalence.models import ANY_VIOLATION, PrevalenceEstimate
from prevalence.services import PrevalenceRequest, prevalence_estimate_create
from touchstone.errors import ImmutableObject

pytestmark = pytest.mark.django_db


@pytest.fixture
def estimate(worked, ops):
    sample, run, _ = worked
    return prevalence_estimate_create(sample=sample, run=run, acting_user=ops, request=PrevalenceRequest(
        estimators=("ppi",), labels=(ANY_VIOLATION,)))[0]


def test_the_orm_refuses_every_change(estimate):
    estimate.estimate = 0.0
    with pytest.raises(ImmutableObject, match="immutable"):
        estimate.save()
    with pytest.raises(ImmutableObject):
        estimate.delete()
    with pytest.raises(ImmutableObject):
        PrevalenceEstimate.objects.filter(pk=estimate.pk).update(estimate=0.0)
    with pytest.raises(ImmutableObject):
        PrevalenceEstimate.objects.filter(pk=estimate.pk).delete()
    with pytest.raises(ImmutableObject):
        PrevalenceEstimate.objects.bulk_update([estimate], ["estimate"])


@pytest.mark.parametrize("sql", ["UPDATE prevalence_prevalenceestimate SET estimate = 0 WHERE id = %s",
                                 "DELETE FROM prevalence_prevalenceestimate WHERE id = %s"])
def test_the_database_refuses_raw_sql(estimate, sql):
    with pytest.raises(IntegrityError) as caught, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [estimate.pk])
    assert "prevalence estimates are immutable" in str(caught.value)
    assert PrevalenceEstimate.objects.get(pk=estimate.pk).estimate == pytest.approx(estimate.estimate)
