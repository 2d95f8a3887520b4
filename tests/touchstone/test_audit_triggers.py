"""Audit events are append-only in the ORM and in the database."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from touchstone.audit import audit_event_record
from touchstone.errors import ImmutableObject
from touchstone.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_audit_events_cannot_be_updated_or_deleted_even_by_raw_sql(author):
    event = audit_event_record(actor=author, event_type="test.event", obj=author, details={"n": 1})
    with pytest.raises(ImmutableObject):
        AuditEvent.objects.bulk_update([event], ["event_type"])
    for sql in (f"UPDATE {AuditEvent._meta.db_table} SET event_type = 'forged' WHERE id = %s",
                f"DELETE FROM {AuditEvent._meta.db_table} WHERE id = %s"):
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cur:
            cur.execute(sql, [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).event_type == "test.event"
    AuditEvent.objects.bulk_create([AuditEvent(event_type="test.more", object_type="x", object_id="1",
                                               object_repr="x")])  # appending stays possible
    assert AuditEvent.objects.filter(event_type="test.more").count() == 1
