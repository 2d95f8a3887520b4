"""Admin for policy authors and approvers: drafts, compile, preview, diff, publish."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from policies import gate as gate_module
from policies.compiler import ModelSettings, TemplateSpec, validate_template
from policies.models import (
    Policy,
    PolicyExample,
    PolicyLabel,
    PolicyRule,
    PolicyVersion,
    PolicyVersionStatus,
    PromptTemplate,
    PromptTemplateVersion,
    PromptVersion,
    ReasoningEffort,
)
from policies.prepublish import prepublish_checks_run
from policies.preview_items import PREVIEW_ITEMS, preview_item_get
from policies.selectors import (
    audit_event_list_for,
    policy_version_diff,
    prompt_template_version_latest_list,
    prompt_version_list,
    prompt_version_preview,
)
from policies.services import (
    policy_publish_gate_write,
    policy_version_create_draft,
    policy_version_next_number,
    policy_version_publish,
    policy_version_record_edit,
    policy_version_retire,
    policy_version_return_to_draft,
    policy_version_submit,
    prompt_template_version_create,
    prompt_version_compile,
)
from touchstone.admin import ReadOnlyAdmin
from touchstone.audit import audit_event_record
from touchstone.errors import ApplicationError


class DraftOnlyInline(admin.TabularInline):
    extra = 0

    def _editable(self, obj: PolicyVersion | None) -> bool:
        return obj is None or obj.is_editable

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_delete_permission(request, obj)


class PolicyLabelInline(DraftOnlyInline):
    model = PolicyLabel
    fields = ("position", "key", "name", "definition", "is_violation", "always_human_review")
    formfield_overrides = {
        PolicyLabel._meta.get_field("definition").__class__: {"widget": forms.Textarea(attrs={"rows": 2, "cols": 60})}
    }


class PolicyRuleInline(DraftOnlyInline):
    model = PolicyRule
    fields = ("position", "rule_id", "label_key", "text")
    formfield_overrides = {
        PolicyRule._meta.get_field("text").__class__: {"widget": forms.Textarea(attrs={"rows": 2, "cols": 70})}
    }


class PolicyExampleInline(DraftOnlyInline):
    model = PolicyExample
    fields = ("position", "label_key", "polarity", "text", "explanation")
    formfield_overrides = {
        PolicyExample._meta.get_field("text").__class__: {"widget": forms.Textarea(attrs={"rows": 2, "cols": 50})}
    }


class PolicyVersionLinkInline(admin.TabularInline):
    model = PolicyVersion
    fields = ("version_link", "status", "author", "approver", "updated_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    @admin.display(description="version")
    def version_link(self, obj: PolicyVersion) -> str:
        url = reverse("admin:policies_policyversion_change", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PolicyForm(forms.ModelForm):
    """The policy, and its publish gate as plain fields (see policies.gate); no golden set: no gate."""

    gate_golden_set = forms.CharField(
        label="Gate: golden set", required=False, max_length=100,
        help_text="The golden set a candidate version's prompt is evaluated on. Empty: no publish gate.")
    gate_version = forms.IntegerField(label="Gate: golden-set version", required=False, min_value=1,
                                      help_text="Empty: its newest frozen version.")
    gate_metric = forms.ChoiceField(label="Gate: metric", required=False,
                                    choices=[("", "—"), *((m, m) for m in gate_module.METRICS)])
    gate_label = forms.CharField(label="Gate: label", required=False, initial=gate_module.VIOLATING,
                                 help_text="'violating' (any violating label) or one label key.")
    gate_max_fpr = forms.FloatField(label="Gate: max FPR", required=False,
                                    help_text="recall_at_fpr only (default 0.01).")
    gate_rule = forms.ChoiceField(label="Gate: rule", required=False, choices=[
        ("", "—"), ("at_least", "at least X (the candidate's point estimate)"),
        ("no_worse_than_published_by", "no worse than the published version by more than δ (lower 95 % bound of Δ)")])
    gate_value = forms.FloatField(label="Gate: X or δ", required=False, min_value=0, max_value=1)

    GATE_FIELDS = {"golden_set": "gate_golden_set", "version": "gate_version", "metric": "gate_metric",
                   "label": "gate_label", "max_fpr": "gate_max_fpr", "at_least": "gate_value",
                   "no_worse_than_published_by": "gate_value"}

    class Meta:
        model = Policy
        fields = ("slug", "title", "owner")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        gate = self.instance.publish_gate if self.instance.pk else None
        if gate:
            rule = "at_least" if "at_least" in gate else "no_worse_than_published_by"
            self.initial.update(gate_golden_set=gate["golden_set"], gate_version=gate.get("version"),
                                gate_metric=gate["metric"], gate_label=gate.get("label", gate_module.VIOLATING),
                                gate_max_fpr=gate.get("max_fpr"), gate_rule=rule, gate_value=gate[rule])

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        self.gate_spec = None
        if not data.get("gate_golden_set"):
            return data
        raw: dict[str, Any] = {"golden_set": data["gate_golden_set"], "label": data.get("gate_label") or "violating"}
        for key, name in (("version", "gate_version"), ("metric", "gate_metric"), ("max_fpr", "gate_max_fpr")):
            if data.get(name) not in (None, ""):
                raw[key] = data[name]
        if data.get("gate_rule"):
            raw[data["gate_rule"]] = data.get("gate_value")
        newest = self.instance.versions.order_by("-number").first() if self.instance.pk else None
        labels = tuple(label.key for label in newest.labels.all()) if newest else None
        try:
            self.gate_spec = gate_module.publish_gate_from_data(raw, labels=labels)
        except gate_module.GateProblem as exc:
            field = "gate_rule" if exc.field in ("at_least", "no_worse_than_published_by") and not data.get(
                "gate_rule") else self.GATE_FIELDS.get(exc.field, "gate_golden_set")
            self.add_error(field, exc.reason)
        return data


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    form = PolicyForm
    list_display = ("slug", "title", "owner", "publish_gate_text", "created_at")
    search_fields = ("slug", "title")
    inlines = [PolicyVersionLinkInline]
    fieldsets = [(None, {"fields": ("slug", "title", "owner")}),
                 ("Publish gate", {"fields": ("gate_golden_set", "gate_version", "gate_metric", "gate_label",
                                              "gate_max_fpr", "gate_rule", "gate_value"),
                                   "description": "What a candidate version must show before an approver can "
                                                  "publish it without a written override."})]

    @admin.display(description="publish gate")
    def publish_gate_text(self, obj: Policy) -> str:
        if not obj.publish_gate:
            return "—"
        gate = gate_module.publish_gate_from_data(obj.publish_gate)
        return f"{gate.golden_set_ref}: {gate.rule_text}"

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {"owner": request.user.pk}

    def save_model(self, request: HttpRequest, obj: Policy, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        changed = [name for name in form.changed_data if not name.startswith("gate_")]
        audit_event_record(actor=request.user, event_type="policy.edited" if change else "policy.created",
                           obj=obj, details={"changed": changed})
        gate = form.gate_spec.as_json() if form.gate_spec else None
        if gate != obj.publish_gate:
            policy_publish_gate_write(policy=obj, gate=form.gate_spec, acting_user=request.user, source="admin")


class CompileForm(forms.Form):
    template_version = forms.ModelChoiceField(queryset=PromptTemplateVersion.objects.none())
    model = forms.CharField(initial="sim-strong", max_length=120)
    temperature = forms.FloatField(initial=0.0, min_value=0.0, max_value=2.0)
    max_output_tokens = forms.IntegerField(initial=512, min_value=1)
    reasoning_effort = forms.ChoiceField(choices=[("", "—"), *ReasoningEffort.choices], required=False)
    seed = forms.IntegerField(required=False)
    context_window = forms.IntegerField(required=False, min_value=1,
                                        help_text="Leave empty to use the model's known window.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        latest = prompt_template_version_latest_list()
        self.fields["template_version"].queryset = PromptTemplateVersion.objects.filter(
            pk__in=[tv.pk for tv in latest]).select_related("template")
        if latest:
            self.fields["template_version"].initial = latest[0].pk

    def model_settings(self) -> ModelSettings:
        data = self.cleaned_data
        return ModelSettings(model=data["model"], temperature=data["temperature"],
                             max_output_tokens=data["max_output_tokens"],
                             reasoning_effort=data["reasoning_effort"] or None, seed=data["seed"],
                             context_window=data["context_window"])


@admin.register(PolicyVersion)
class PolicyVersionAdmin(admin.ModelAdmin):
    list_display = ("__str__", "status", "author", "approver", "updated_at", "published_at")
    list_filter = ("status", "policy")
    list_select_related = ("policy", "author", "approver")
    search_fields = ("policy__slug", "policy__title", "text")
    inlines = [PolicyLabelInline, PolicyRuleInline, PolicyExampleInline]
    change_form_template = "admin/policies/policyversion/change_form.html"
    readonly_fields = ("number", "status", "parent", "author", "approver", "content_sha256",
                       "created_at", "updated_at", "submitted_at", "published_at", "retired_at")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return ["policy", "text", "ordered_labels", "sensitive_images", "change_note"]
        return ["policy", "number", "status", "text", "ordered_labels", "sensitive_images", "change_note", "parent",
                "author", "approver",
                "content_sha256", "created_at", "updated_at", "submitted_at", "published_at", "retired_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return (*self.readonly_fields, "policy") if obj is not None else ()

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and not obj.is_editable:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and not obj.is_editable:
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # bulk delete would bypass the draft-only check
        return actions

    def save_model(self, request: HttpRequest, obj: PolicyVersion, form: Any, change: bool) -> None:
        if not change:
            obj.author = request.user
            obj.number = policy_version_next_number(policy=obj.policy)
            super().save_model(request, obj, form, change)
            audit_event_record(actor=request.user, event_type="policy_version.created", obj=obj)
        else:
            super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        changed = list(form.changed_data) + [
            f"{fs.model._meta.model_name}s" for fs in formsets if fs.has_changed()]
        if change and changed:
            policy_version_record_edit(version=form.instance, acting_user=request.user, changed=changed)

    # --- custom views -------------------------------------------------------------------------

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view
        custom = [
            path("<int:pk>/compile/", view(self.compile_view), name="policies_policyversion_compile"),
            path("<int:pk>/preview/", view(self.preview_view), name="policies_policyversion_preview"),
            path("<int:pk>/diff/", view(self.diff_view), name="policies_policyversion_diff"),
            path("<int:pk>/transition/<str:action>/", view(self.transition_view),
                 name="policies_policyversion_transition"),
        ]
        return custom + super().get_urls()

    def _version(self, request: HttpRequest, pk: int) -> PolicyVersion:
        version = get_object_or_404(PolicyVersion.objects.select_related("policy", "author", "approver"), pk=pk)
        if not self.has_view_permission(request, version):
            raise admin.sites.PermissionDenied  # type: ignore[attr-defined]
        return version

    def _context(self, request: HttpRequest, version: PolicyVersion, title: str, **extra: Any) -> dict[str, Any]:
        return {**self.admin_site.each_context(request), "opts": self.model._meta, "original": version,
                "version": version, "title": title, **extra}

    def _change_url(self, version: PolicyVersion) -> str:
        return reverse("admin:policies_policyversion_change", args=[version.pk])

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        version = PolicyVersion.objects.filter(pk=object_id).select_related("policy").first()
        extra = dict(extra_context or {})
        if version is not None:
            extra["prompt_versions"] = prompt_version_list(policy_version=version)
            extra["audit_events"] = audit_event_list_for(version)[:20]
            extra["can_publish"] = request.user.has_perm("policies.publish_policyversion")
        return super().change_view(request, object_id, form_url, extra)

    def compile_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        version = self._version(request, pk)
        form = CompileForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                prompt_version, created = prompt_version_compile(
                    policy_version=version, template_version=form.cleaned_data["template_version"],
                    settings=form.model_settings(), acting_user=request.user)
            except ApplicationError as exc:
                self.message_user(request, f"Cannot compile {version}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{'Compiled' if created else 'Already compiled'}: prompt version "
                                           f"{prompt_version.sha256[:12]} ({prompt_version.token_count} tokens).")
                url = reverse("admin:policies_policyversion_preview", args=[version.pk])
                return HttpResponseRedirect(f"{url}?prompt={prompt_version.pk}")
        return TemplateResponse(request, "admin/policies/policyversion/compile.html",
                                self._context(request, version, f"Compile {version}", form=form))

    def preview_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        version = self._version(request, pk)
        prompts = list(prompt_version_list(policy_version=version))
        selected = next((p for p in prompts if str(p.pk) == request.GET.get("prompt")), prompts[0] if prompts else None)
        item = preview_item_get(request.GET.get("item"))
        context = self._context(request, version, f"Preview {version}", prompts=prompts, selected=selected,
                                items=PREVIEW_ITEMS, item=item)
        if selected is not None:
            preview = prompt_version_preview(prompt_version=selected, item=item)
            context.update(preview.__dict__)
        return TemplateResponse(request, "admin/policies/policyversion/preview.html", context)

    def diff_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        version = self._version(request, pk)
        siblings = list(version.policy.versions.exclude(pk=version.pk).order_by("-number"))
        default_other = version.parent if version.parent_id else next(
            (v for v in siblings if v.number < version.number), siblings[0] if siblings else None)
        other = next((v for v in siblings if str(v.pk) == request.GET.get("other")), default_other)
        templates = prompt_template_version_latest_list()
        template = next((t for t in templates if t.template.key == request.GET.get("template")),
                        templates[0] if templates else None)
        context = self._context(request, version, f"Diff {version}", other=other, siblings=siblings,
                                templates=templates, template=template)
        if other is not None:
            diff = policy_version_diff(version=version, other=other, template_version=template)
            context.update(policy_diff=diff.policy_diff_html, policy_changed=diff.policy_changed,
                           prompt_diff=diff.prompt_diff_html)
        return TemplateResponse(request, "admin/policies/policyversion/diff.html", context)

    TRANSITIONS: dict[str, tuple[str, str]] = {
        "submit": ("Submit for review", "The version is locked while it is reviewed."),
        "return": ("Return to draft", "The author can edit it again and must resubmit it."),
        "publish": ("Approve and publish", "A published version never changes. The currently "
                                           "published version of this policy, if any, is retired."),
        "retire": ("Retire", "It stays readable but is no longer the policy in force."),
        "new_draft": ("Start a new draft from this version", "A copy you can edit; this version stays as it is."),
    }

    def transition_view(self, request: HttpRequest, pk: int, action: str) -> HttpResponse:
        version = self._version(request, pk)
        if action not in self.TRANSITIONS:
            return HttpResponseRedirect(self._change_url(version))
        label, consequence = self.TRANSITIONS[action]
        if request.method != "POST":
            published = version.policy.versions.filter(status=PolicyVersionStatus.PUBLISHED).first()
            extra: dict[str, Any] = {}
            if action == "publish" and version.status == PolicyVersionStatus.IN_REVIEW \
                    and request.user.has_perm("policies.publish_policyversion"):
                # The approver's confirmation: the publish gate's verdict and its evidence (the
                # check may compute and store the comparison with the published version).
                verdicts = prepublish_checks_run(version=version, acting_user=request.user)
                extra = {"verdicts": verdicts, "gate_failed": any(not v.passed for v in verdicts),
                         "can_override": request.user.has_perm("policies.override_publish_gate")}
            return TemplateResponse(request, "admin/policies/policyversion/confirm.html", self._context(
                request, version, f"{label}: {version}", action=action, label=label,
                consequence=consequence, currently_published=published, **extra))
        try:
            result = self._run_transition(request, version, action)
        except ApplicationError as exc:
            self.message_user(request, f"{label} failed: {exc.message}", messages.ERROR)
            return HttpResponseRedirect(self._change_url(version))
        self.message_user(request, f"{label}: done. {result} is {result.get_status_display().lower()}.")
        return HttpResponseRedirect(self._change_url(result))

    def _run_transition(self, request: HttpRequest, version: PolicyVersion, action: str) -> PolicyVersion:
        user = request.user
        if action == "submit":
            return policy_version_submit(version=version, acting_user=user)
        if action == "return":
            return policy_version_return_to_draft(version=version, acting_user=user,
                                                  reason=request.POST.get("reason", ""))
        if action == "publish":
            return policy_version_publish(version=version, acting_user=user,
                                          override_reason=request.POST.get("override_reason", ""))
        if action == "retire":
            return policy_version_retire(version=version, acting_user=user)
        return policy_version_create_draft(from_version=version, acting_user=user,
                                           change_note=request.POST.get("reason", ""))


class PromptTemplateVersionForm(forms.ModelForm):
    class Meta:
        model = PromptTemplateVersion
        fields = ("template", "body", "note")

    def clean_body(self) -> str:
        body = self.cleaned_data["body"]
        problems = validate_template(TemplateSpec(key="new", version=0, body=body))
        if problems:
            raise forms.ValidationError([f"{field}: {message}" for field, message in problems])
        return body


@admin.register(PromptTemplate)
class PromptTemplateAdmin(admin.ModelAdmin):
    list_display = ("key", "name", "format", "is_builtin", "created_at")
    readonly_fields = ("is_builtin",)


@admin.register(PromptTemplateVersion)
class PromptTemplateVersionAdmin(admin.ModelAdmin):
    form = PromptTemplateVersionForm
    list_display = ("__str__", "sha256", "note", "created_at")
    list_select_related = ("template",)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: PromptTemplateVersion, form: Any, change: bool) -> None:
        created = prompt_template_version_create(template=obj.template, body=obj.body, note=obj.note,
                                                 acting_user=request.user)
        obj.pk = created.pk


@admin.register(PromptVersion)
class PromptVersionAdmin(ReadOnlyAdmin):
    list_display = ("short_sha", "policy_version", "template_version", "model", "token_count",
                    "simulated", "first_used_at", "created_at")
    list_filter = ("model", "template_version__template")
    list_select_related = ("policy_version__policy", "template_version__template")
    readonly_fields = [f.name for f in PromptVersion._meta.fields]

    @admin.display(description="sha256")
    def short_sha(self, obj: PromptVersion) -> str:
        return obj.sha256[:12]

    @admin.display(boolean=True, description="simulator model")
    def simulated(self, obj: PromptVersion) -> bool:
        return obj.is_simulated
