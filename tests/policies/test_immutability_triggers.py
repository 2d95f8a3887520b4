"""A submitted or published policy version and its labels, rules and examples: bulk_create refused
in the ORM, raw writes refused in the database; drafts and retiring stay possible."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from policies.models import PolicyExample, PolicyLabel, PolicyRule, PolicyVersion, PolicyVersionStatus
from policies.services import policy_version_create_draft, policy_version_retire
from touchstone.errors import ImmutableObject

pytestmark = pytest.mark.django_db


def _refused(sql: str, params: list) -> str:
    with pytest.raises(IntegrityError) as caught, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    return str(caught.value)


def test_bulk_create_cannot_add_content_to_a_published_version(published):
    before = (published.labels.count(), published.rules.count(), published.examples.count())
    with pytest.raises(ImmutableObject, match="draft"):
        PolicyLabel.objects.bulk_create([PolicyLabel(version=published, key="extra", name="Extra")])
    with pytest.raises(ImmutableObject):
        PolicyRule.objects.bulk_create([PolicyRule(version=published, rule_id="X-1", text="x")])
    with pytest.raises(ImmutableObject):
        PolicyExample.objects.bulk_create(
            [PolicyExample(version=published, text="x", label_key="extra", polarity="positive")])
    with pytest.raises(ImmutableObject):
        PolicyLabel.objects.bulk_update(list(published.labels.all()), ["name"])
    with pytest.raises(ImmutableObject):
        PolicyVersion.objects.bulk_update([published], ["text"])
    assert (published.labels.count(), published.rules.count(), published.examples.count()) == before


def test_raw_sql_cannot_change_a_published_version_or_its_content(published):
    label = published.labels.first()
    table = PolicyLabel._meta.db_table
    assert "can be added to" in _refused(
        f"INSERT INTO {table} (version_id, position, key, name, definition, is_violation, always_human_review) "
        "VALUES (%s, 99, 'extra', 'Extra', '', FALSE, FALSE)",
        [published.pk])
    assert "can be changed" in _refused(f"UPDATE {table} SET name = 'Renamed' WHERE id = %s", [label.pk])
    assert "can be deleted" in _refused(f"DELETE FROM {table} WHERE version_id = %s", [published.pk])
    for rule_table in (PolicyRule._meta.db_table, PolicyExample._meta.db_table):
        assert "can be deleted" in _refused(f"DELETE FROM {rule_table} WHERE version_id = %s", [published.pk])
    versions = PolicyVersion._meta.db_table
    assert "cannot be changed" in _refused(f"UPDATE {versions} SET text = 'rewritten' WHERE id = %s",
                                           [published.pk])
    assert "cannot be changed" in _refused(f"UPDATE {versions} SET status = 'draft' WHERE id = %s",
                                           [published.pk])
    assert "can be deleted" in _refused(f"DELETE FROM {versions} WHERE id = %s", [published.pk])
    published.refresh_from_db()
    assert published.labels.get(pk=label.pk).name == label.name and published.text != "rewritten"


def test_drafts_stay_editable_and_a_published_version_can_still_be_retired(published, author, approver):
    draft = policy_version_create_draft(from_version=published, acting_user=author)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {PolicyLabel._meta.db_table} SET name = 'Renamed' WHERE version_id = %s", [draft.pk])
        cursor.execute(f"UPDATE {PolicyVersion._meta.db_table} SET text = 'rewritten' WHERE id = %s", [draft.pk])
    assert set(draft.labels.values_list("name", flat=True)) == {"Renamed"}
    retired = policy_version_retire(version=published, acting_user=approver)
    assert retired.status == PolicyVersionStatus.RETIRED
