"""Item sets a labeling run can label besides a drawn sample, provided by the apps above.

``runs`` sits below ``goldsets`` and must not import it; an app that can turn a reference into
the items to label registers a provider here in its ``AppConfig.ready()``: ``goldsets``
registers ``golden_set`` (``NAME[@N]``: the golden-set version's items as a census sample,
π = 1). ``run create --golden-set NAME[@N]`` looks the provider up by that kind.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.models import AbstractBaseUser

from content.models import Sample
from touchstone.errors import ApplicationError

ItemSetProvider = Callable[[str, AbstractBaseUser | None], Sample]
_PROVIDERS: dict[str, ItemSetProvider] = {}


class ItemSetUnavailable(ApplicationError):
    code = "item_set_unavailable"


def item_set_provider_register(kind: str, provider: ItemSetProvider) -> None:
    """Register (or replace: ``ready()`` may run twice) the provider of item sets of ``kind``."""
    _PROVIDERS[kind] = provider


def item_set_sample(*, kind: str, ref: str, acting_user: AbstractBaseUser | None) -> Sample:
    """The sample holding the items of ``ref`` (made on first use by the provider of ``kind``).

    Raises ItemSetUnavailable when no app provides ``kind``, and what the provider raises."""
    provider = _PROVIDERS.get(kind)
    if provider is None:
        raise ItemSetUnavailable(f"no installed app provides item sets of kind {kind!r}")
    return provider(ref, acting_user)
