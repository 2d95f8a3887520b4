"""The shared Redis rate limiter against a real Redis: it holds a request rate across
limiter instances (as separate workers would) and waits for token budget."""

from __future__ import annotations

import asyncio
import time
import uuid

from runs.llm.executor import run_blocking
from runs.llm.ratelimit import LEASE_MAX_REQUESTS, LEASE_SECONDS, RateLimiter


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


def test_fast_endpoints_lease_requests_and_still_hold_the_shared_rate(redis_url) -> None:
    key = uuid.uuid4().hex
    # 12,000 requests/minute = 200/s: each round trip takes a lease of 8 requests.
    a, b = (RateLimiter(redis_url, key, 12_000, 10**9) for _ in range(2))
    assert a.lease_size == LEASE_MAX_REQUESTS and RateLimiter(redis_url, key, 600, 10**9).lease_size == 1
    round_trips = 0
    script = a.script

    async def counted(**kwargs):
        nonlocal round_trips
        round_trips += 1
        return await script(**kwargs)

    a.script = counted

    async def drain(limiter: RateLimiter, n: int) -> None:
        for _ in range(n):
            await limiter.acquire(1)

    async def until_waiting(limiter: RateLimiter) -> None:
        while await limiter.acquire(1) == 0:
            pass

    async def scenario() -> tuple[int, float]:
        await asyncio.gather(drain(a, 6000), drain(b, 6000))  # the burst of 12,000
        burst_round_trips = round_trips
        # What refilled while the burst drained: take it too, so the bucket is really empty.
        await asyncio.gather(until_waiting(a), until_waiting(b))
        started = time.monotonic()
        await asyncio.gather(drain(a, 200), drain(b, 200))
        elapsed = time.monotonic() - started
        await a.close()
        await b.close()
        return burst_round_trips, elapsed

    burst_round_trips, elapsed = run_blocking(scenario())
    # While the budget lasts, one round trip per lease; at the limit, one request at a time.
    assert burst_round_trips <= 6000 / LEASE_MAX_REQUESTS + 20
    assert 1.6 <= elapsed <= 3.0  # 400 more at 200/s: leases never exceed the shared rate


def test_a_stale_lease_lapses(redis_url) -> None:
    limiter = RateLimiter(redis_url, uuid.uuid4().hex, 60_000, 10**9)

    async def scenario() -> tuple[int, int]:
        await limiter.acquire(1)
        left = limiter._leased_requests
        limiter._leased_at -= 2 * LEASE_SECONDS  # as if the worker had been busy elsewhere
        await limiter.acquire(1)
        await limiter.close()
        return left, limiter._leased_requests

    left, after = run_blocking(scenario())
    # The old lease was dropped and a new one taken: 7 left of it, not 6 of the old one.
    assert left == LEASE_MAX_REQUESTS - 1 and after == LEASE_MAX_REQUESTS - 1
