"""The policy admin through Django's test client: read-only published versions, the
confirmation-page publish, compile, preview and diff pages, bounded queries."""

from __future__ import annotations

import pytest
from django.urls import reverse

from policies.models import PolicyVersion, PolicyVersionStatus, PromptVersion
from policies.services import policy_version_create_draft, policy_version_submit

pytestmark = pytest.mark.django_db


def change_url(version: PolicyVersion) -> str:
    return reverse("admin:policies_policyversion_change", args=[version.pk])


def test_published_version_is_read_only_in_the_admin(client, published, author) -> None:
    client.force_login(author)
    page = client.get(change_url(published))
    assert page.status_code == 200
    assert b'name="text"' not in page.content  # no editable field
    assert b"New draft from this" in page.content
    response = client.post(change_url(published), {"text": "rewritten", "change_note": "x"})
    assert response.status_code == 403
    published.refresh_from_db()
    assert published.text != "rewritten"


def test_draft_edit_is_audited(client, draft, author) -> None:
    client.force_login(author)
    page = client.get(change_url(draft))
    form = page.context["adminform"].form
    data = {name: form.initial.get(name) or "" for name in ("text", "change_note")}
    data["text"] = draft.text + "\nOne more principle."
    for formset in page.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        for field in management.fields:
            data[f"{management.prefix}-{field}"] = management.initial.get(field, management[field].value())
        for inline_form in formset.formset.forms:
            for name, field in inline_form.fields.items():
                value = inline_form.initial.get(name, field.initial)
                if value is None or value is False:
                    continue
                data[f"{inline_form.prefix}-{name}"] = value.pk if hasattr(value, "pk") else value
    response = client.post(change_url(draft), data)
    assert response.status_code == 302, response.content[:2000]
    draft.refresh_from_db()
    assert draft.text.endswith("One more principle.")
    assert draft.labels.count() == 5
    from touchstone.models import AuditEvent

    edit = AuditEvent.objects.get(event_type="policy_version.edited", object_id=str(draft.pk))
    assert edit.actor == author and "text" in edit.details["changed"]


def test_publish_goes_through_a_confirmation_page(client, draft, author, approver) -> None:
    policy_version_submit(version=draft, acting_user=author)
    client.force_login(approver)
    url = reverse("admin:policies_policyversion_transition", args=[draft.pk, "publish"])
    confirm = client.get(url)
    assert confirm.status_code == 200 and b"A published version never changes" in confirm.content
    draft.refresh_from_db()
    assert draft.status == PolicyVersionStatus.IN_REVIEW  # GET changes nothing
    response = client.post(url)
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.status == PolicyVersionStatus.PUBLISHED and draft.approver == approver


def test_author_publishing_sees_the_maker_checker_error(client, draft, author) -> None:
    from django.contrib.auth.models import Group

    author.groups.add(Group.objects.get(name="policy approver"))
    policy_version_submit(version=draft, acting_user=author)
    client.force_login(author)
    url = reverse("admin:policies_policyversion_transition", args=[draft.pk, "publish"])
    response = client.post(url, follow=True)
    assert "cannot also approve" in response.content.decode()
    draft.refresh_from_db()
    assert draft.status == PolicyVersionStatus.IN_REVIEW


def test_compile_then_preview_shows_prompt_user_message_and_tokens(client, published, author) -> None:
    client.force_login(author)
    compile_url = reverse("admin:policies_policyversion_compile", args=[published.pk])
    form = client.get(compile_url).context["form"]
    template_version = form.fields["template_version"].queryset.get(template__key="category_blocks")
    response = client.post(compile_url, {"template_version": template_version.pk, "model": "sim-strong",
                                         "temperature": "0", "max_output_tokens": "256"})
    assert response.status_code == 302
    prompt_version = PromptVersion.objects.get()
    preview = client.get(response["Location"] + "&item=query-response")
    html = preview.content.decode()
    assert "S1: Insult or degradation" in html
    assert "&lt;response&gt;" in html and "Target: &lt;response&gt;" in html
    assert preview.context["total_tokens"] == prompt_version.token_count + preview.context["user_tokens"]
    assert "SIMULATOR MODEL" in html


def test_compile_error_is_shown_not_swallowed(client, published, author) -> None:
    client.force_login(author)
    compile_url = reverse("admin:policies_policyversion_compile", args=[published.pk])
    form = client.get(compile_url).context["form"]
    tv = form.fields["template_version"].queryset.first()
    response = client.post(compile_url, {"template_version": tv.pk, "model": "gpt-4", "temperature": "0",
                                         "max_output_tokens": "8000"}, follow=True)
    assert "Cannot compile" in response.content.decode() and "system_prompt" in response.content.decode()
    assert not PromptVersion.objects.exists()


def test_diff_shows_policy_and_prompt_changes(client, published, author) -> None:
    draft = policy_version_create_draft(from_version=published, acting_user=author)
    PolicyVersion.objects.filter(pk=draft.pk).update(text=draft.text.replace("free of abuse", "free of ABUSE"))
    client.force_login(author)
    html = client.get(reverse("admin:policies_policyversion_diff", args=[draft.pk])).content.decode()
    assert "harassment@1" in html and "harassment@2" in html
    assert html.count('class="diff_chg"') >= 2 or "diff_sub" in html
    assert "ABUSE" in html


def test_version_list_queries_are_bounded(client, published, author, django_assert_max_num_queries) -> None:
    for _ in range(5):
        policy_version_create_draft(from_version=published, acting_user=author)
    client.force_login(author)
    with django_assert_max_num_queries(12):
        assert client.get(reverse("admin:policies_policyversion_changelist")).status_code == 200


def test_audit_log_is_visible_but_not_editable(client, published, author) -> None:
    client.force_login(author)
    page = client.get(reverse("admin:touchstone_auditevent_changelist"))
    assert page.status_code == 200 and b"policy_version.published" in page.content
    assert client.get(reverse("admin:touchstone_auditevent_add")).status_code == 403
