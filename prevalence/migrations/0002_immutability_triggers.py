"""Prevalence estimates refuse every change and deletion in the database itself (see
touchstone.immutability and prevalence.models.PrevalenceEstimate)."""

from django.db import migrations

from touchstone.immutability import Guard, trigger_operations

GUARDS = [
    Guard("prevalence_estimate_no_update", "prevalence_prevalenceestimate", "UPDATE", "1 = 1",
          "prevalence estimates are immutable and cannot be changed"),
    Guard("prevalence_estimate_no_delete", "prevalence_prevalenceestimate", "DELETE", "1 = 1",
          "prevalence estimates are immutable and cannot be deleted"),
]


class Migration(migrations.Migration):

    dependencies = [("prevalence", "0001_initial")]

    operations = trigger_operations(GUARDS)
