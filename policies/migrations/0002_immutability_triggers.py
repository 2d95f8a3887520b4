"""Published, retired and in-review policy versions and their labels, rules and examples
refuse changes in the database itself (see touchstone.immutability)."""

from django.db import migrations

from touchstone.immutability import Guard, trigger_operations

_STATUS = "(SELECT status FROM policies_policyversion WHERE id = {row}.version_id) <> 'draft'"
_CONTENT_GUARDS = [
    guard
    for table in ("policies_policylabel", "policies_policyrule", "policies_policyexample")
    for guard in (
        Guard(f"{table}_insert_draft_only", table, "INSERT", _STATUS.format(row="NEW"),
              f"{table}: only a draft policy version's content can be added to"),
        Guard(f"{table}_update_draft_only", table, "UPDATE",
              f"{_STATUS.format(row='OLD')} OR {_STATUS.format(row='NEW')}",
              f"{table}: only a draft policy version's content can be changed"),
        Guard(f"{table}_delete_draft_only", table, "DELETE", _STATUS.format(row="OLD"),
              f"{table}: only a draft policy version's content can be deleted"),
    )
]
# Submitted versions keep their text and taxonomy; published and retired ones also keep their
# digest, approver and publication time, and never go back to draft or review. Retiring stays allowed.
_FIXED_ONCE_SUBMITTED = ("text", "ordered_labels", "sensitive_images", "policy_id", "number", "parent_id",
                         "author_id", "change_note")
_FIXED_ONCE_PUBLISHED = ("content_sha256", "approver_id", "published_at", "submitted_at")
_VERSION_GUARDS = [
    Guard("policies_policyversion_update_fixed", "policies_policyversion", "UPDATE",
          "(OLD.status <> 'draft' AND ("
          + " OR ".join(f"NEW.{column} {{distinct}} OLD.{column}" for column in _FIXED_ONCE_SUBMITTED)
          + ")) OR (OLD.status IN ('published', 'retired') AND (NEW.status IN ('draft', 'in_review') OR "
          + " OR ".join(f"NEW.{column} {{distinct}} OLD.{column}" for column in _FIXED_ONCE_PUBLISHED)
          + "))",
          "a submitted or published policy version cannot be changed; start a new draft from it"),
    Guard("policies_policyversion_delete_draft_only", "policies_policyversion", "DELETE",
          "OLD.status <> 'draft'", "only a draft policy version can be deleted"),
]


class Migration(migrations.Migration):

    dependencies = [("policies", "0001_initial"), ("touchstone", "0002_immutability_triggers")]

    operations = trigger_operations(_CONTENT_GUARDS + _VERSION_GUARDS)
