"""The one retry policy: exponential backoff with jitter, capped.

Celery tasks use it through ``TASK_RETRY`` (Celery's own ``retry_backoff``: base · 2^n seconds,
capped, full jitter); code that retries inside one process (an LLM call, a Label Studio push,
a batch poll) waits ``backoff_seconds``, the same curve with half of it jittered so that many
clients retrying at once spread out without ever retrying at once.
"""

from __future__ import annotations

import random

# For @shared_task(**TASK_RETRY, autoretry_for=...): 5 s doubling to 5 minutes, jittered.
TASK_RETRY: dict[str, object] = {"retry_backoff": 5, "retry_backoff_max": 300, "retry_jitter": True}


def backoff_seconds(attempt: int, *, base: float, cap: float, retry_after: float | None = None,
                    jitter: bool = True) -> float:
    """Seconds to wait before retry ``attempt`` (1 for the first): ``min(cap, base · 2^(attempt−1))``,
    drawn uniformly from its upper half when ``jitter``. A server's ``Retry-After`` wins, plus
    up to a quarter second so that clients told the same moment do not return together."""
    if retry_after is not None:
        return retry_after + (random.uniform(0, 0.25) if jitter else 0.0)
    delay = min(cap, base * 2 ** max(attempt - 1, 0))
    return random.uniform(delay / 2, delay) if jitter else delay
