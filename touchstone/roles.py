"""The roles and the permission table for every app: one place to read who may do what.

Each role is a Django group; pages, the API, the CLI and services check these permissions.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

ROLE_PERMISSIONS: dict[str, list[str]] = {
    "policy author": [
        "policies.view_policy", "policies.add_policy", "policies.change_policy",
        "policies.view_policyversion", "policies.add_policyversion", "policies.change_policyversion",
        "policies.delete_policyversion",
        *(f"policies.{verb}_{model}" for model in ("policylabel", "policyrule", "policyexample")
          for verb in ("view", "add", "change", "delete")),
        "policies.view_prompttemplate", "policies.view_prompttemplateversion",
        "policies.view_promptversion", "policies.add_promptversion", "touchstone.view_auditevent",
    ],
    "policy approver": [
        "policies.view_policy", "policies.view_policyversion", "policies.publish_policyversion",
        "policies.view_policylabel", "policies.view_policyrule", "policies.view_policyexample",
        "policies.view_prompttemplate", "policies.view_prompttemplateversion",
        "policies.view_promptversion", "policies.add_promptversion", "touchstone.view_auditevent",
    ],
    "labeling ops": [
        "policies.view_policy", "policies.view_policyversion", "policies.view_promptversion",
        "policies.view_prompttemplate", "policies.view_prompttemplateversion",
        "touchstone.view_auditevent", "content.view_contentitem", "content.view_contentimport",
        "content.view_sample", "content.add_sample", "runs.view_llmendpoint", "runs.add_llmendpoint",
        "runs.change_llmendpoint", "runs.view_labelingrun", "runs.change_labelingrun",
        "runs.view_judgement", "runs.view_itemdecision", "review.view_vendor", "review.add_vendor",
        "review.change_vendor", "review.view_labeler", "review.change_labeler", "review.view_humanlabel",
        "review.view_labelimport", "goldsets.view_goldenset", "goldsets.add_goldenset",
        "goldsets.change_goldenset", "goldsets.freeze_goldenset", "goldsets.view_raw_labeler_ids",
        "goldsets.view_goldensetversion", "goldsets.view_goldenitem",
    ],
    "pipeline": ["policies.view_policy", "policies.view_policyversion", "policies.view_promptversion",
                 "goldsets.view_goldenset", "goldsets.view_goldensetversion", "goldsets.view_goldenitem"],
}

ROLES = tuple(ROLE_PERMISSIONS)


def role_groups_grant_permissions() -> None:
    """Give each role group exactly its permissions. Idempotent."""
    for group_name, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        wanted = []
        for perm in perms:
            app_label, codename = perm.split(".")
            found = list(Permission.objects.filter(content_type__app_label=app_label, codename=codename))
            if not found:  # a typo or a renamed model must not silently shrink a role
                raise LookupError(f"role {group_name!r}: no permission {perm!r}")
            wanted.extend(found)
        group.permissions.set(wanted)
