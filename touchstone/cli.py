"""Helpers shared by the management commands (thin shells)."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.management.base import CommandError, CommandParser

from touchstone.errors import ApplicationError

F = TypeVar("F", bound=Callable[..., Any])


def add_user_argument(parser: CommandParser) -> None:
    parser.add_argument("--user", default=os.environ.get("TOUCHSTONE_USER"),
                        help="act as this username (default: $TOUCHSTONE_USER)")


def acting_user(username: str | None) -> AbstractBaseUser:
    if not username:
        raise CommandError("name the acting user with --user USERNAME (or set TOUCHSTONE_USER)")
    try:
        return get_user_model().objects.get(username=username)
    except get_user_model().DoesNotExist as exc:
        raise CommandError(f"--user: no user named {username!r}") from exc


def application_errors_as_command_errors(func: F) -> F:
    """Domain errors become one clear line and a non-zero exit."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc

    return wrapper  # type: ignore[return-value]
