"""``python manage.py apitoken create|list|revoke``."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from touchstone.api_tokens import api_token_create, api_token_revoke
from touchstone.cli import acting_user, add_user_argument
from touchstone.models import ApiToken, ApiTokenScope


class Command(BaseCommand):
    help = "Create, list and revoke scoped API tokens (the key is printed once, stored hashed)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        p = sub.add_parser("create")
        add_user_argument(p)
        p.add_argument("--for", dest="owner", metavar="USERNAME",
                       help="the user the token acts as (default: the acting user)")
        p.add_argument("--name", required=True)
        p.add_argument("--scope", choices=ApiTokenScope.values, default=ApiTokenScope.READ)
        p.add_argument("--json", action="store_true", help="the token and its key as JSON (the key only here)")
        sub.add_parser("list").add_argument("--json", action="store_true")
        p = sub.add_parser("revoke")
        p.add_argument("prefix", help="the key's first characters, as shown by list")
        p.add_argument("--json", action="store_true")
        add_user_argument(p)

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "create":
            actor = acting_user(options["user"])
            owner = acting_user(options["owner"]) if options["owner"] else actor
            token, key = api_token_create(user=owner, name=options["name"], scope=options["scope"],
                                          acting_user=actor)
            if options["json"]:
                self.stdout.write(_dumps({**_token_json(token), "key": key}))
                self.stderr.write("Store the key now: it is not shown again.")
                return
            self.stdout.write(f"created {token} for {token.user.get_username()}")
            self.stdout.write(key)
            self.stderr.write("Store the key now: it is not shown again.")
        elif action == "list":
            if options["json"]:
                self.stdout.write(_dumps({"tokens": [_token_json(t) for t in ApiToken.objects.select_related("user")]}))
                return
            for token in ApiToken.objects.select_related("user"):
                state = f"revoked {token.revoked_at:%Y-%m-%d}" if token.revoked_at else "active"
                self.stdout.write(f"{token.prefix}…  {token.name:<24} {token.user.get_username():<12} "
                                  f"{token.scope:<6} {state}")
        else:
            actor = acting_user(options["user"])
            tokens = list(ApiToken.objects.filter(prefix__startswith=options["prefix"][:11]))
            if len(tokens) != 1:
                raise CommandError(f"{len(tokens)} tokens match {options['prefix']!r}; give more of the key")
            api_token_revoke(token=tokens[0], acting_user=actor)
            if options["json"]:
                tokens[0].refresh_from_db()
                self.stdout.write(_dumps(_token_json(tokens[0])))
                return
            self.stdout.write(f"revoked {tokens[0]}")


def _token_json(token: ApiToken) -> dict[str, Any]:
    """A token as the commands print it: never its key or hash."""
    return {"prefix": token.prefix, "name": token.name, "user": token.user.get_username(), "scope": token.scope,
            "created_at": token.created_at.isoformat(),
            "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None}


def _dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)
