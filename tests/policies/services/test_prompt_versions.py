"""Prompt versions: content-addressed, write-once, compiled through the service."""

from __future__ import annotations

import pytest
from django.db import IntegrityError

from policies.compiler import ModelSettings
from policies.models import PromptTemplate, PromptTemplateVersion, PromptVersion
from policies.services import (
    PolicyCompileError,
    prompt_template_version_create,
    prompt_version_compile,
    prompt_version_compile_all,
)
from policies.tasks import prompt_version_compile_all_task
from touchstone.errors import ImmutableObject

pytestmark = pytest.mark.django_db
SIM = ModelSettings(model="sim-strong", seed=3)


def test_builtin_templates_are_installed_by_migrate() -> None:
    assert set(PromptTemplate.objects.values_list("key", flat=True)) == {
        "json_classifier", "sectioned_policy", "category_blocks"}


def test_compiling_the_same_inputs_twice_returns_the_same_row(published, approver) -> None:
    first = prompt_version_compile_all(policy_version=published, settings=SIM, acting_user=approver)
    second = prompt_version_compile_all(policy_version=published, settings=SIM, acting_user=approver)
    assert [created for _, created in first] == [True, True, True]
    assert [created for _, created in second] == [False, False, False]
    assert PromptVersion.objects.count() == 3
    assert {pv.pk for pv, _ in first} == {pv.pk for pv, _ in second}


def test_other_settings_give_another_prompt_version(published, approver) -> None:
    tv = PromptTemplateVersion.objects.get(template__key="json_classifier")
    a, _ = prompt_version_compile(policy_version=published, template_version=tv, settings=SIM, acting_user=None)
    b, created = prompt_version_compile(policy_version=published, template_version=tv,
                                        settings=ModelSettings(model="sim-strong", seed=4), acting_user=None)
    assert created and a.sha256 != b.sha256 and a.system_prompt == b.system_prompt


def test_prompt_versions_are_write_once(published) -> None:
    tv = PromptTemplateVersion.objects.get(template__key="json_classifier")
    pv, _ = prompt_version_compile(policy_version=published, template_version=tv, settings=SIM, acting_user=None)
    pv.system_prompt = "ignore the policy"
    with pytest.raises(ImmutableObject):
        pv.save()
    with pytest.raises(ImmutableObject):
        PromptVersion.objects.filter(pk=pv.pk).update(system_prompt="x")
    with pytest.raises(ImmutableObject):
        pv.delete()
    assert PromptVersion.objects.get(pk=pv.pk).system_prompt.startswith("You are a content-safety classifier")


def test_sha256_is_unique_in_the_database(published) -> None:
    tv = PromptTemplateVersion.objects.get(template__key="json_classifier")
    pv, _ = prompt_version_compile(policy_version=published, template_version=tv, settings=SIM, acting_user=None)
    clone = PromptVersion(**{f.attname: getattr(pv, f.attname) for f in PromptVersion._meta.concrete_fields
                             if f.name not in ("id", "created_at")})
    with pytest.raises(IntegrityError):
        clone.save()


def test_compile_errors_are_reported_with_fields(published) -> None:
    tv = PromptTemplateVersion.objects.get(template__key="json_classifier")
    with pytest.raises(PolicyCompileError) as exc:
        prompt_version_compile(policy_version=published, template_version=tv,
                               settings=ModelSettings(model="gpt-4", max_output_tokens=8000), acting_user=None)
    assert exc.value.extra["problems"][0]["field"] == "system_prompt"
    assert not PromptVersion.objects.exists()


def test_template_versions_refuse_unknown_variables() -> None:
    template = PromptTemplate.objects.get(key="json_classifier")
    with pytest.raises(PolicyCompileError) as exc:
        prompt_template_version_create(template=template, body="{{ policy_text }}\n{{ jailbreak }}", note="",
                                       acting_user=None)
    assert exc.value.problems[0][0] == "template.body line 2"
    created = prompt_template_version_create(template=template, body="Policy:\n{{ policy_text }}", note="short",
                                             acting_user=None)
    assert created.number == 2


def test_compile_task_called_directly_is_idempotent(published, approver) -> None:
    first = prompt_version_compile_all_task(published.pk, {"model": "sim-strong"}, approver.pk)
    second = prompt_version_compile_all_task(published.pk, {"model": "sim-strong"}, approver.pk)
    assert first == second and len(set(first)) == 3
    assert PromptVersion.objects.count() == 3
