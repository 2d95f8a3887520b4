"""Policy version lifecycle: maker-checker, immutability by every path, audit, import."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from policies.models import (
    Policy,
    PolicyExample,
    PolicyLabel,
    PolicyRule,
    PolicyVersion,
    PolicyVersionStatus,
)
from policies.selectors import policy_export
from policies.services import (
    MakerCheckerViolation,
    PolicyCompileError,
    policy_import,
    policy_version_create_draft,
    policy_version_publish,
    policy_version_record_edit,
    policy_version_retire,
    policy_version_return_to_draft,
    policy_version_submit,
)
from touchstone.errors import ImmutableObject, InvalidStateTransition, LocatedError, PermissionDenied
from touchstone.models import AuditEvent

pytestmark = pytest.mark.django_db


def events(version: PolicyVersion) -> list[tuple[str, str]]:
    return [(e.event_type, e.actor.username if e.actor else "")
            for e in AuditEvent.objects.filter(object_id=str(version.pk),
                                               object_type="policies.PolicyVersion").order_by("id")]


def test_import_creates_a_draft_with_its_taxonomy(draft: PolicyVersion) -> None:
    assert draft.status == PolicyVersionStatus.DRAFT and draft.number == 1
    assert list(draft.labels.values_list("key", flat=True)) == [
        "not_harassment", "insult", "hate_harassment", "sexual_harassment", "threat"]
    assert draft.labels.get(key="threat").always_human_review
    assert draft.rules.count() == 6 and draft.examples.count() == 6


def test_reimporting_identical_content_is_a_no_op(draft, author, harassment_text) -> None:
    again = policy_import(text=harassment_text, path="harassment.md", acting_user=author)
    assert not again.created and again.version == draft
    assert PolicyVersion.objects.count() == 1


def test_importing_changed_content_creates_the_next_draft(draft, author, harassment_text) -> None:
    changed = policy_import(text=harassment_text.replace("free of abuse", "free of all abuse"),
                            path="harassment.md", acting_user=author)
    assert changed.created and changed.version.number == 2 and changed.version.parent == draft


def test_bad_file_writes_nothing_and_names_the_place(author, harassment_text) -> None:
    bad = harassment_text.replace("  - label: insult\n    polarity: positive",
                                  "  - label: rude\n    polarity: positive", 1)
    with pytest.raises(LocatedError) as exc:
        policy_import(text=bad, path="policies/harassment.md", acting_user=author)
    assert exc.value.message.startswith("policies/harassment.md:")
    assert exc.value.field == "examples[0].label" and exc.value.line is not None
    assert not Policy.objects.exists() and not AuditEvent.objects.exists()


def test_full_lifecycle_with_audit(draft, author, approver) -> None:
    submitted = policy_version_submit(version=draft, acting_user=author)
    assert submitted.status == PolicyVersionStatus.IN_REVIEW and len(submitted.content_sha256) == 64
    published = policy_version_publish(version=submitted, acting_user=approver)
    assert published.status == PolicyVersionStatus.PUBLISHED
    assert published.approver == approver and published.published_at is not None
    assert events(published) == [("policy_version.created", "author"), ("policy_version.submitted", "author"),
                                 ("policy_version.published", "approver")]


def test_author_cannot_approve_even_with_the_permission(draft, author, approver) -> None:
    from django.contrib.auth.models import Group

    author.groups.add(Group.objects.get(name="policy approver"))
    author = type(author).objects.get(pk=author.pk)  # drop the permission cache
    policy_version_submit(version=draft, acting_user=author)
    with pytest.raises(MakerCheckerViolation):
        policy_version_publish(version=draft, acting_user=author)
    draft.refresh_from_db()
    assert draft.status == PolicyVersionStatus.IN_REVIEW


def test_an_approver_who_edited_the_draft_cannot_approve_it(draft, author, approver) -> None:
    policy_version_record_edit(version=draft, acting_user=approver, changed=["text"])
    policy_version_submit(version=draft, acting_user=author)
    with pytest.raises(MakerCheckerViolation):
        policy_version_publish(version=draft, acting_user=approver)


def test_publishing_needs_the_permission(draft, author, second_author) -> None:
    policy_version_submit(version=draft, acting_user=author)
    with pytest.raises(PermissionDenied):
        policy_version_publish(version=draft, acting_user=second_author)


def test_publish_requires_review_and_returning_unlocks(draft, author, approver) -> None:
    with pytest.raises(InvalidStateTransition):
        policy_version_publish(version=draft, acting_user=approver)
    policy_version_submit(version=draft, acting_user=author)
    with pytest.raises(ImmutableObject):
        PolicyLabel.objects.filter(version=draft).update(name="changed during review")
    returned = policy_version_return_to_draft(version=draft, acting_user=approver, reason="tighten HAR-1")
    assert returned.status == PolicyVersionStatus.DRAFT and returned.content_sha256 == ""
    PolicyLabel.objects.filter(version=draft, key="insult").update(name="Insult")


def test_submit_refuses_a_taxonomy_that_does_not_compile(draft, author) -> None:
    PolicyExample.objects.create(version=draft, label_key="no_such_label", text="x", position=99)
    with pytest.raises(PolicyCompileError) as exc:
        policy_version_submit(version=draft, acting_user=author)
    assert exc.value.problems[0][0] == "examples[6].label"


@pytest.mark.parametrize("attempt", [
    "save", "queryset_update", "delete", "queryset_delete", "label_save", "label_update", "label_create",
    "rule_delete", "example_update",
])
def test_a_published_version_cannot_change_by_any_path(published: PolicyVersion, attempt: str) -> None:
    before = policy_export(version=published)
    with pytest.raises(ImmutableObject):
        if attempt == "save":
            published.text = "rewritten"
            published.save()
        elif attempt == "queryset_update":
            PolicyVersion.objects.filter(pk=published.pk).update(text="rewritten")
        elif attempt == "delete":
            published.delete()
        elif attempt == "queryset_delete":
            PolicyVersion.objects.all().delete()
        elif attempt == "label_save":
            label = published.labels.first()
            label.definition = "anything goes"
            label.save()
        elif attempt == "label_update":
            PolicyLabel.objects.filter(version=published).update(is_violation=False)
        elif attempt == "label_create":
            PolicyLabel.objects.create(version=published, key="new", name="New", definition="x")
        elif attempt == "rule_delete":
            PolicyRule.objects.filter(version=published).delete()
        elif attempt == "example_update":
            PolicyExample.objects.filter(version=published).update(text="x")
    published.refresh_from_db()
    assert published.status == PolicyVersionStatus.PUBLISHED
    assert policy_export(version=published) == before


def test_new_draft_from_published_copies_content_and_publishing_it_retires_the_old(
        published, author, approver, second_author) -> None:
    draft2 = policy_version_create_draft(from_version=published, acting_user=second_author)
    assert draft2.number == 2 and draft2.parent == published and draft2.author == second_author
    assert policy_export(version=draft2) == policy_export(version=published)
    PolicyLabel.objects.filter(version=draft2, key="insult").update(definition="Insults, now broader.")
    policy_version_submit(version=draft2, acting_user=second_author)
    policy_version_publish(version=draft2, acting_user=approver)
    published.refresh_from_db()
    assert published.status == PolicyVersionStatus.RETIRED and published.retired_at is not None
    assert PolicyVersion.objects.filter(policy=published.policy, status="published").get() == draft2


def test_retire(published, approver) -> None:
    retired = policy_version_retire(version=published, acting_user=approver)
    assert retired.status == PolicyVersionStatus.RETIRED
    with pytest.raises(InvalidStateTransition):
        policy_version_retire(version=retired, acting_user=approver)


def test_audit_events_are_append_only(published) -> None:
    event = AuditEvent.objects.first()
    with pytest.raises(ImmutableObject):
        event.save()
    with pytest.raises(ImmutableObject):
        AuditEvent.objects.update(event_type="x")
    with pytest.raises(ImmutableObject):
        AuditEvent.objects.all().delete()


def test_spec_selector_reads_in_a_fixed_number_of_queries(published) -> None:
    from policies.selectors import policy_version_spec

    version = PolicyVersion.objects.select_related("policy").get(pk=published.pk)
    with CaptureQueriesContext(connection) as queries:
        policy_version_spec(version)
    assert len(queries) == 3
