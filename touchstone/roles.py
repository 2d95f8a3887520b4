"""The roles and the permission table for every app: one place to read who may do what.

Each role is a Django group; pages, the API, the CLI and services check these permissions.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group, Permission
from django.http import HttpRequest, HttpResponse

from touchstone.errors import PermissionDenied

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
        "policies.override_publish_gate", "evaluation.view_signal", "evaluation.view_signalversion",
        "evaluation.view_evaluation",  # the evidence the publish gate links to
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
        "review.view_reviewqueue", "review.view_reviewtask", "review.view_hiddengolditem",
        "evaluation.view_signal", "evaluation.add_signal", "evaluation.change_signal",
        "evaluation.view_signalversion", "evaluation.add_signalversion", "evaluation.view_signalscore",
        "evaluation.add_signalscore", "evaluation.view_signalscoreimport",
        "evaluation.view_evaluation", "evaluation.add_evaluation",
        "prevalence.view_prevalenceestimate", "prevalence.add_prevalenceestimate",
        "monitoring.view_monitor", "monitoring.add_monitor", "monitoring.change_monitor", "monitoring.view_cycle",
        "monitoring.change_cycle", "monitoring.view_alert", "monitoring.change_alert",
    ],
    "pipeline": ["policies.view_policy", "policies.view_policyversion", "policies.view_promptversion",
                 "goldsets.view_goldenset", "goldsets.view_goldensetversion", "goldsets.view_goldenitem",
                 "evaluation.view_signal", "evaluation.view_signalversion", "evaluation.view_signalscore",
                 "evaluation.view_evaluation", "prevalence.view_prevalenceestimate",
                 "monitoring.view_monitor", "monitoring.view_cycle", "monitoring.view_alert"],
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


def permission_require(user: AbstractBaseUser | AnonymousUser | None, perm: str, *, to: str) -> None:
    """The one permission check: pages, the API, the CLI and services all call it.

    Raises PermissionDenied (HTTP 403 on pages and in the API) naming what was refused and why."""
    if user is None or not user.is_active or not user.has_perm(perm):
        who = user.get_username() if user is not None and user.is_authenticated else "an anonymous user"
        raise PermissionDenied(f"{who} may not {to}: that needs the {perm} permission")


PageView = Callable[..., HttpResponse]


def page_permission_required(perm: str, *, to: str) -> Callable[[PageView], PageView]:
    """A staff page that also needs ``perm``: anonymous users go to the sign-in page, staff without
    the permission get a 403 page saying which permission it needs."""

    def decorate(view: PageView) -> PageView:
        @wraps(view)
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            permission_require(request.user, perm, to=to)
            return view(request, *args, **kwargs)

        return staff_member_required(checked)

    return decorate
