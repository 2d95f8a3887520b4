"""Evaluations refuse every change and deletion in the database itself (see
touchstone.immutability and evaluation.models.Evaluation)."""

from django.db import migrations

from touchstone.immutability import Guard, trigger_operations

GUARDS = [
    Guard("evaluation_evaluation_no_update", "evaluation_evaluation", "UPDATE", "1 = 1",
          "evaluations are immutable and cannot be changed"),
    Guard("evaluation_evaluation_no_delete", "evaluation_evaluation", "DELETE", "1 = 1",
          "evaluations are immutable and cannot be deleted"),
]


class Migration(migrations.Migration):

    dependencies = [("evaluation", "0003_evaluation")]

    operations = trigger_operations(GUARDS)
