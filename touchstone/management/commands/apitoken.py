"""``python manage.py apitoken create|list|revoke``."""

from __future__ import annotations

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
        sub.add_parser("list")
        p = sub.add_parser("revoke")
        p.add_argument("prefix", help="the key's first characters, as shown by list")
        add_user_argument(p)

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "create":
            actor = acting_user(options["user"])
            owner = acting_user(options["owner"]) if options["owner"] else actor
            token, key = api_token_create(user=owner, name=options["name"], scope=options["scope"],
                                          acting_user=actor)
            self.stdout.write(f"created {token} for {token.user.get_username()}")
            self.stdout.write(key)
            self.stderr.write("Store the key now: it is not shown again.")
        elif action == "list":
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
            self.stdout.write(f"revoked {tokens[0]}")
