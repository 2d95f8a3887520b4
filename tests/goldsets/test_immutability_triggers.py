"""A frozen golden-set version and its items: bulk_create refused in the ORM, every raw write in the database."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from goldsets.freeze import FreezeRule
from goldsets.models import GoldenItem, GoldenSetVersion
from goldsets.services import goldset_version_build, goldset_version_freeze_request
from touchstone.errors import ImmutableObject
from touchstone.immutability import immutability_override

pytestmark = pytest.mark.django_db


@pytest.fixture
def frozen(labelled, published):
    version = goldset_version_freeze_request(name="gs", policy_version=published, rule=FreezeRule())
    return goldset_version_build(version_id=version.pk)


def _refused(sql: str, params: list | None = None) -> str:
    with pytest.raises(IntegrityError) as caught, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    return str(caught.value)


def test_bulk_create_cannot_add_items_to_a_frozen_version(frozen):
    first = GoldenItem.objects.filter(version=frozen).order_by("position").first()
    copy = GoldenItem(**{f.attname: getattr(first, f.attname) for f in GoldenItem._meta.concrete_fields
                         if f.attname != "id"})
    copy.position = 10_000
    with pytest.raises(ImmutableObject, match="frozen"):
        GoldenItem.objects.bulk_create([copy])
    with pytest.raises(ImmutableObject):
        GoldenItem.objects.bulk_update([first], ["gold_label"])
    with pytest.raises(ImmutableObject):
        GoldenSetVersion.objects.bulk_create([GoldenSetVersion(golden_set=frozen.golden_set, status="frozen",
                                                               policy_version=frozen.policy_version)])
    assert GoldenItem.objects.filter(version=frozen).count() == frozen.item_count


def test_raw_sql_cannot_change_a_frozen_version_or_its_items(frozen):
    items = GoldenItem._meta.db_table
    first = GoldenItem.objects.filter(version=frozen).order_by("position").first()
    columns = [f.column for f in GoldenItem._meta.concrete_fields if f.column != "id"]
    insert = (f"INSERT INTO {items} ({', '.join(columns)}) SELECT "
              + ", ".join("position + 10000" if c == "position" else c for c in columns)
              + f" FROM {items} WHERE id = %s")
    # the item must not collide on (version, item): the trigger fires before the unique check
    assert "cannot be added to a frozen" in _refused(insert, [first.pk])
    assert "cannot be changed" in _refused(f"UPDATE {items} SET gold_label = 'threat' WHERE id = %s", [first.pk])
    assert "cannot be deleted" in _refused(f"DELETE FROM {items} WHERE version_id = %s", [frozen.pk])
    versions = GoldenSetVersion._meta.db_table
    assert "cannot be changed" in _refused(f"UPDATE {versions} SET digest = 'x' WHERE id = %s", [frozen.pk])
    assert "cannot be deleted" in _refused(f"DELETE FROM {versions} WHERE id = %s", [frozen.pk])

    stored = GoldenItem.objects.get(pk=first.pk)
    assert (stored.gold_label, stored.export_head) == (first.gold_label, first.export_head)
    assert GoldenItem.objects.filter(version=frozen).count() == frozen.item_count


def test_unfrozen_versions_stay_writable_and_the_override_lets_a_wipe_through(frozen, published):
    building = goldset_version_freeze_request(name="gs", policy_version=published, rule=FreezeRule())
    with connection.cursor() as cursor:  # a building version is still the freeze's to write
        cursor.execute(f"UPDATE {GoldenSetVersion._meta.db_table} SET changelog = 'x' WHERE id = %s",
                       [building.pk])
    with immutability_override("test: wipe"), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {GoldenItem._meta.db_table} WHERE version_id = %s", [frozen.pk])
    assert not GoldenItem.objects.filter(version=frozen).exists()
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:  # override is gone
        cursor.execute(f"DELETE FROM {GoldenSetVersion._meta.db_table} WHERE id = %s", [frozen.pk])
