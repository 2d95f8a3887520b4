"""``python manage.py policy import|export|list|prompts|compile|submit|publish [--json]``.

With ``--json`` each subcommand prints one JSON document (indent 2, dates ISO 8601) with the
facts its text shows, and nothing else on stdout."""

from __future__ import annotations

import json as _json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from policies.compiler import ModelSettings
from policies.models import PolicyVersion, PromptTemplateVersion, PromptVersion
from policies.selectors import (
    policy_export,
    policy_list,
    policy_version_get_by_ref,
    policy_version_published,
    prompt_version_list,
)
from policies.services import (
    policy_import,
    policy_version_publish,
    policy_version_submit,
    prompt_version_compile,
    prompt_version_compile_all,
)
from touchstone.cli import acting_user, add_user_argument, application_errors_as_command_errors


class Command(BaseCommand):
    help = "Policies as files, and their prompt versions."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        p = sub.add_parser("import", help="create a draft version from a policy file")
        p.add_argument("paths", nargs="+", type=Path)
        _add_json_argument(p)
        add_user_argument(p)
        p = sub.add_parser("export", help="write a version in the policy file format")
        p.add_argument("ref", help="SLUG or SLUG@VERSION (default: newest)")
        p.add_argument("--output", type=Path, help="file to write (default: stdout)")
        _add_json_argument(p, "the version and its text (or, with --output, the file written)")
        _add_json_argument(sub.add_parser("list", help="policies, their newest and published versions"))
        p = sub.add_parser("prompts", help="a version's prompt versions with their sha256 (what run create "
                                           "--prompt takes)")
        p.add_argument("ref", help="SLUG or SLUG@VERSION (default: the published version, else the newest)")
        _add_json_argument(p)
        p = sub.add_parser("compile", help="compile a version into prompt versions")
        p.add_argument("ref")
        p.add_argument("--template", help="template key (default: every template)")
        p.add_argument("--model", default="sim-strong")
        p.add_argument("--temperature", type=float, default=0.0)
        p.add_argument("--max-output-tokens", type=int, default=512)
        p.add_argument("--reasoning-effort", choices=["minimal", "low", "medium", "high"])
        p.add_argument("--seed", type=int)
        p.add_argument("--context-window", type=int)
        _add_json_argument(p)
        add_user_argument(p)
        for action, text in (("submit", "send a draft for review"),
                             ("publish", "approve and publish a version in review")):
            p = sub.add_parser(action, help=text)
            p.add_argument("ref")
            if action == "publish":
                p.add_argument("--override-reason", default="",
                               help="publish although the policy's publish gate fails (approvers; audited)")
            _add_json_argument(p)
            add_user_argument(p)

    @application_errors_as_command_errors
    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"handle_{options['action']}")(**options)

    def handle_import(self, *, paths: list[Path], user: str | None, json: bool = False, **_: Any) -> None:
        actor = acting_user(user)
        imported = []
        for path in paths:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"{path}: cannot read: {exc}") from exc
            result = policy_import(text=text, path=str(path), acting_user=actor)
            if json:
                imported.append({"path": str(path), "created": result.created, **_version_document(result.version)})
                continue
            verb = "created draft" if result.created else "unchanged, newest is"
            self.stdout.write(f"{path}: {verb} {result.version} ({result.version.status})")
        if json:
            self.stdout.write(_dumps({"imported": imported}))

    def handle_export(self, *, ref: str, output: Path | None, json: bool = False, **_: Any) -> None:
        version = policy_version_get_by_ref(ref)
        text = policy_export(version=version)
        if json:
            if output is not None:
                output.write_text(text, encoding="utf-8")
            self.stdout.write(_dumps({**_version_document(version),
                                      **({"output": str(output)} if output is not None else {"text": text})}))
        elif output is None:
            self.stdout.write(text, ending="")
        else:
            output.write_text(text, encoding="utf-8")
            self.stdout.write(f"wrote {output}")

    def handle_list(self, *, json: bool = False, **_: Any) -> None:
        rows = []
        for policy in policy_list():
            versions = {v.status: v.number for v in policy.versions.order_by("number")}
            if json:
                rows.append({"slug": policy.slug, "title": policy.title, "versions": policy.version_count,
                             "published": versions.get("published")})
                continue
            self.stdout.write(f"{policy.slug}\t{policy.title}\tversions={policy.version_count}\t"
                              f"published={versions.get('published', '-')}")
        if json:
            self.stdout.write(_dumps({"policies": rows}))

    def handle_prompts(self, *, ref: str, json: bool = False, **_: Any) -> None:
        version = policy_version_get_by_ref(ref)
        if "@" not in ref:
            version = policy_version_published(policy=version.policy) or version
        prompts = list(prompt_version_list(policy_version=version))
        if json:
            self.stdout.write(_dumps({**_version_document(version),
                                      "prompts": [_prompt_document(pv) for pv in prompts]}))
            return
        if not prompts:
            self.stdout.write(f"{version} has no prompt versions yet: policy compile {ref} --user USER")
        for pv in prompts:
            self.stdout.write(f"{pv.sha256}  {version}  {pv.template_version}  model={pv.model}  "
                              f"tokens={pv.token_count}")

    def handle_compile(self, *, ref: str, template: str | None, model: str, temperature: float,
                       max_output_tokens: int, reasoning_effort: str | None, seed: int | None,
                       context_window: int | None, user: str | None, json: bool = False, **_: Any) -> None:
        actor = acting_user(user)
        version = policy_version_get_by_ref(ref)
        settings = ModelSettings(model=model, temperature=temperature, max_output_tokens=max_output_tokens,
                                 reasoning_effort=reasoning_effort, seed=seed, context_window=context_window)
        if template:
            tv = PromptTemplateVersion.objects.filter(template__key=template).order_by("-number").first()
            if tv is None:
                raise CommandError(f"--template: no template {template!r}")
            results = [prompt_version_compile(policy_version=version, template_version=tv,
                                              settings=settings, acting_user=actor)]
        else:
            results = prompt_version_compile_all(policy_version=version, settings=settings, acting_user=actor)
        if json:
            self.stdout.write(_dumps({**_version_document(version),
                                      "prompts": [{**_prompt_document(pv), "created": created}
                                                  for pv, created in results]}))
            return
        for pv, created in results:
            self.stdout.write(f"{'compiled' if created else 'exists  '} {pv.sha256[:12]} "
                              f"{pv.template_version} {pv.model} {pv.token_count} tokens "
                              f"({pv.token_count_method})")

    def handle_submit(self, *, ref: str, user: str | None, json: bool = False, **_: Any) -> None:
        version = policy_version_submit(version=policy_version_get_by_ref(ref), acting_user=acting_user(user))
        self._transition(version, json)

    def handle_publish(self, *, ref: str, user: str | None, override_reason: str, json: bool = False,
                       **_: Any) -> None:
        version = policy_version_publish(version=policy_version_get_by_ref(ref), acting_user=acting_user(user),
                                         override_reason=override_reason)
        self._transition(version, json)

    def _transition(self, version: PolicyVersion, json: bool) -> None:
        if json:
            self.stdout.write(_dumps(_version_document(version)))
        else:
            self.stdout.write(f"{version} is {version.status}")


def _add_json_argument(parser: CommandParser, text: str = "print one JSON document") -> None:
    parser.add_argument("--json", action="store_true", help=text)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _version_document(version: PolicyVersion) -> dict[str, Any]:
    return {"policy_version": str(version), "policy": version.policy.slug, "version": version.number,
            "status": version.status, "content_sha256": version.content_sha256 or None,
            "created_at": _iso(version.created_at), "submitted_at": _iso(version.submitted_at),
            "published_at": _iso(version.published_at), "retired_at": _iso(version.retired_at)}


def _prompt_document(pv: PromptVersion) -> dict[str, Any]:
    return {"sha256": pv.sha256, "template_version": str(pv.template_version), "model": pv.model,
            "token_count": pv.token_count, "token_count_method": pv.token_count_method,
            "created_at": _iso(pv.created_at)}


def _dumps(document: dict[str, Any]) -> str:
    return _json.dumps(document, indent=2, ensure_ascii=False)
