"""A frozen golden-set version and its items refuse changes in the database itself
(see touchstone.immutability)."""

from django.db import migrations

from touchstone.immutability import Guard, trigger_operations

_FROZEN = "(SELECT status FROM goldsets_goldensetversion WHERE id = {row}.version_id) = 'frozen'"
GUARDS = [
    Guard("goldsets_version_update_unfrozen", "goldsets_goldensetversion", "UPDATE", "OLD.status = 'frozen'",
          "a frozen golden-set version cannot be changed"),
    Guard("goldsets_version_delete_unfrozen", "goldsets_goldensetversion", "DELETE", "OLD.status = 'frozen'",
          "a frozen golden-set version cannot be deleted"),
    Guard("goldsets_item_insert_unfrozen", "goldsets_goldenitem", "INSERT", _FROZEN.format(row="NEW"),
          "items cannot be added to a frozen golden-set version"),
    Guard("goldsets_item_update_unfrozen", "goldsets_goldenitem", "UPDATE",
          f"{_FROZEN.format(row='OLD')} OR {_FROZEN.format(row='NEW')}",
          "items of a frozen golden-set version cannot be changed"),
    Guard("goldsets_item_delete_unfrozen", "goldsets_goldenitem", "DELETE", _FROZEN.format(row="OLD"),
          "items of a frozen golden-set version cannot be deleted"),
]


class Migration(migrations.Migration):

    dependencies = [("goldsets", "0001_initial"), ("touchstone", "0002_immutability_triggers")]

    operations = trigger_operations(GUARDS)
