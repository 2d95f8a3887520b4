"""A rate limiter shared by every worker: two token buckets per endpoint in Redis (requests
per minute and tokens per minute), refilled continuously and taken atomically by a Lua script.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

# KEYS[1]: bucket; ARGV: capacity, refill per second, cost. Returns seconds to wait (0: taken).
_TAKE = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1e6
local capacity, rate, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or t
tokens = math.min(capacity, tokens + (t - ts) * rate)
if cost > capacity then cost = capacity end
if tokens >= cost then
  redis.call('HSET', KEYS[1], 'tokens', tokens - cost, 'ts', t)
  redis.call('EXPIRE', KEYS[1], 3600)
  return '0'
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', t)
redis.call('EXPIRE', KEYS[1], 3600)
return tostring((cost - tokens) / rate)
"""


class RateLimiter:
    def __init__(self, redis_url: str, endpoint_key: str, requests_per_minute: int, tokens_per_minute: int) -> None:
        self.client = aioredis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self.script = self.client.register_script(_TAKE)
        self.buckets = [
            (f"touchstone:rl:{endpoint_key}:rpm", requests_per_minute, requests_per_minute / 60.0, False),
            (f"touchstone:rl:{endpoint_key}:tpm", tokens_per_minute, tokens_per_minute / 60.0, True),
        ]

    async def acquire(self, tokens: int) -> float:
        """Wait until one request of ``tokens`` tokens is allowed; returns seconds waited."""
        waited = 0.0
        for key, capacity, rate, by_tokens in self.buckets:
            cost = tokens if by_tokens else 1
            while True:
                wait = float(await self.script(keys=[key], args=[capacity, rate, cost]))
                if wait <= 0:
                    break
                await asyncio.sleep(min(wait, 5.0))
                waited += min(wait, 5.0)
        return waited

    async def close(self) -> None:
        await self.client.aclose()
