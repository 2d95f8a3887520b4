"""A rate limiter shared by every worker: two token buckets per endpoint in Redis (requests
per minute and tokens per minute), refilled continuously and taken together, atomically, by
one Lua script: one round trip per request.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

# KEYS: the request bucket, the token bucket. ARGV: request capacity, request refill/s, token
# capacity, token refill/s, tokens wanted. Returns seconds to wait; "0" means both were taken.
_TAKE = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1e6
local function level(key, capacity, rate)
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(state[1]) or capacity
  local ts = tonumber(state[2]) or t
  return math.min(capacity, tokens + (t - ts) * rate)
end
local rcap, rrate, tcap, trate = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local want = math.min(tonumber(ARGV[5]), tcap)
local r, k = level(KEYS[1], rcap, rrate), level(KEYS[2], tcap, trate)
local wait = math.max((1 - r) / rrate, (want - k) / trate, 0)
if wait == 0 then r, k = r - 1, k - want end
redis.call('HSET', KEYS[1], 'tokens', r, 'ts', t)
redis.call('HSET', KEYS[2], 'tokens', k, 'ts', t)
redis.call('EXPIRE', KEYS[1], 3600)
redis.call('EXPIRE', KEYS[2], 3600)
return tostring(wait)
"""


class RateLimiter:
    def __init__(self, redis_url: str, endpoint_key: str, requests_per_minute: int, tokens_per_minute: int) -> None:
        self.client = aioredis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self.script = self.client.register_script(_TAKE)
        self.keys = [f"touchstone:rl:{endpoint_key}:rpm", f"touchstone:rl:{endpoint_key}:tpm"]
        self.limits = [requests_per_minute, requests_per_minute / 60.0, tokens_per_minute, tokens_per_minute / 60.0]

    async def acquire(self, tokens: int) -> float:
        """Wait until one request of ``tokens`` tokens is allowed; returns seconds waited."""
        waited = 0.0
        while True:
            wait = float(await self.script(keys=self.keys, args=[*self.limits, tokens]))
            if wait <= 0:
                return waited
            await asyncio.sleep(min(wait, 5.0))
            waited += min(wait, 5.0)

    async def close(self) -> None:
        await self.client.aclose()
