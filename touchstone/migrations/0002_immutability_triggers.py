"""The override table the immutability triggers consult, and audit events made append-only in the database."""

from django.db import migrations

from touchstone.immutability import CREATE_OVERRIDE_TABLE, DROP_OVERRIDE_TABLE, Guard, trigger_operations

AUDIT_GUARDS = [
    Guard("touchstone_audit_no_update", "touchstone_auditevent", "UPDATE", "1 = 1",
          "audit events are append-only and cannot be changed"),
    Guard("touchstone_audit_no_delete", "touchstone_auditevent", "DELETE", "1 = 1",
          "audit events are append-only and cannot be deleted"),
]


class Migration(migrations.Migration):

    dependencies = [("touchstone", "0001_initial")]

    operations = [
        migrations.RunSQL(CREATE_OVERRIDE_TABLE, DROP_OVERRIDE_TABLE),
        *trigger_operations(AUDIT_GUARDS),
    ]
