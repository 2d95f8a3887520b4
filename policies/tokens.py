"""Token counting that never touches the network.

``tiktoken`` is used when the model's encoding is known *and* already in
``TIKTOKEN_CACHE_DIR`` (tiktoken downloads encodings on first use, which an offline machine
cannot do); otherwise the compiler's documented estimate applies. The method used is stored
with every prompt version.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

from django.conf import settings

from policies.compiler import TokenCounter, estimate_tokens


@functools.lru_cache(maxsize=16)
def _cached_encoding(name: str) -> Callable[[str], list[int]] | None:
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", settings.TIKTOKEN_CACHE_DIR)
    import tiktoken
    import tiktoken.load

    def offline(blobpath: str) -> bytes:
        raise OSError(f"{blobpath} is not cached and Touchstone does not download encodings")

    original = tiktoken.load.read_file
    tiktoken.load.read_file = offline  # read_file_cached falls back to it on a cache miss
    try:
        encoding = tiktoken.get_encoding(name)
    except (OSError, ValueError):
        return None
    finally:
        tiktoken.load.read_file = original
    return functools.partial(encoding.encode, disallowed_special=())


def token_counter_for(model: str) -> TokenCounter:
    import tiktoken

    try:
        name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        return estimate_tokens
    encode = _cached_encoding(name)
    if encode is None:
        return estimate_tokens
    return lambda text: (len(encode(text)), f"tiktoken:{name}")
