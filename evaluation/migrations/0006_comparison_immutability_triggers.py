"""Comparisons refuse every change and deletion in the database itself (see
touchstone.immutability and evaluation.models.Comparison)."""

from django.db import migrations

from touchstone.immutability import Guard, trigger_operations

GUARDS = [
    Guard("evaluation_comparison_no_update", "evaluation_comparison", "UPDATE", "1 = 1",
          "comparisons are immutable and cannot be changed"),
    Guard("evaluation_comparison_no_delete", "evaluation_comparison", "DELETE", "1 = 1",
          "comparisons are immutable and cannot be deleted"),
]


class Migration(migrations.Migration):

    dependencies = [("evaluation", "0005_comparison")]

    operations = trigger_operations(GUARDS)
