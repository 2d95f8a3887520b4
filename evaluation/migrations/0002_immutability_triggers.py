"""Signal names and meanings, versions with scores, and scores themselves refuse changes in the
database itself (see touchstone.immutability and evaluation.models)."""

from django.db import migrations

from touchstone.immutability import Guard, trigger_operations

_SCORED = "EXISTS (SELECT 1 FROM evaluation_signalscore WHERE version_id = OLD.id)"
_SIGNAL_FIXED = ("name", "kind", "policy_id", "output_type", "score_label")
GUARDS = [
    Guard("evaluation_signal_update_fixed", "evaluation_signal", "UPDATE",
          " OR ".join(f"NEW.{column} {{distinct}} OLD.{column}" for column in _SIGNAL_FIXED),
          "a signal's name, kind, policy, output type and score label cannot change; create a new signal"),
    Guard("evaluation_version_update_unscored", "evaluation_signalversion", "UPDATE", _SCORED,
          "a signal version with scores cannot be changed; create a new version"),
    Guard("evaluation_version_delete_unscored", "evaluation_signalversion", "DELETE", _SCORED,
          "a signal version with scores cannot be deleted"),
    Guard("evaluation_score_no_update", "evaluation_signalscore", "UPDATE", "1 = 1",
          "signal scores are write-once and cannot be changed"),
    Guard("evaluation_score_no_delete", "evaluation_signalscore", "DELETE", "1 = 1",
          "signal scores are write-once and cannot be deleted"),
]


class Migration(migrations.Migration):

    dependencies = [("evaluation", "0001_initial"), ("touchstone", "0002_immutability_triggers")]

    operations = trigger_operations(GUARDS)
