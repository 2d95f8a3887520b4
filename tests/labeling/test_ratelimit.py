"""The shared Redis rate limiter against a real Redis: it holds a request rate across
limiter instances (as separate workers would) and waits for token budget."""

from __future__ import annotations

import asyncio
import time
import uuid

from labeling.llm.executor import run_blocking
from labeling.llm.ratelimit import RateLimiter


def test_two_limiters_share_one_request_budget(redis_url) -> None:
    key = uuid.uuid4().hex
    # 600 requests/minute = 10/s with a burst of 600: drain the burst, then measure the refill.
    a, b = (RateLimiter(redis_url, key, 600, 10**9) for _ in range(2))

    async def scenario() -> float:
        await asyncio.gather(*(limiter.acquire(1) for limiter in (a, b) for _ in range(300)))
        started = time.monotonic()
        await asyncio.gather(*(limiter.acquire(1) for limiter in (a, b) for _ in range(10)))
        elapsed = time.monotonic() - started
        await a.close()
        await b.close()
        return elapsed

    elapsed = run_blocking(scenario())
    assert 1.5 <= elapsed <= 4.0  # 20 more requests at 10/s after the burst is gone


def test_token_budget_waits(redis_url) -> None:
    limiter = RateLimiter(redis_url, uuid.uuid4().hex, 10**6, 6000)  # 100 tokens/s, burst 6000

    async def scenario() -> tuple[float, float]:
        first = await limiter.acquire(6000)
        second = await limiter.acquire(150)
        await limiter.close()
        return first, second

    first, second = run_blocking(scenario())
    assert first == 0 and 1.0 <= second <= 3.0
