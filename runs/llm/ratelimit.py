"""A rate limiter shared by every worker: two token buckets per endpoint in Redis (requests
per minute and tokens per minute), refilled continuously and taken together, atomically, by
one Lua script.

At high request rates a limiter takes a small lease of several requests per round trip and
spends it locally: the Redis call and its client cost as much CPU as the LLM call itself
otherwise. A lease is short-lived (``LEASE_SECONDS``), so a paused limiter cannot hoard budget
and burst later, and it is only taken when the rate allows many requests per second, so slow
endpoints keep exact one-by-one accounting.
"""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis

# KEYS: the request bucket, the token bucket. ARGV: request capacity, request refill/s, token
# capacity, token refill/s, tokens per request, requests wanted. Takes as many requests as
# wanted if both buckets allow, else one, else none. Returns "granted wait": the requests
# taken and, when none was, the seconds until one can be.
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
local n = tonumber(ARGV[6])
local r, k = level(KEYS[1], rcap, rrate), level(KEYS[2], tcap, trate)
if r < n or k < n * want then n = 1 end
local wait = math.max((n - r) / rrate, (n * want - k) / trate, 0)
local granted = 0
if wait == 0 then r, k, granted = r - n, k - n * want, n end
redis.call('HSET', KEYS[1], 'tokens', r, 'ts', t)
redis.call('HSET', KEYS[2], 'tokens', k, 'ts', t)
redis.call('EXPIRE', KEYS[1], 3600)
redis.call('EXPIRE', KEYS[2], 3600)
return granted .. ' ' .. tostring(wait)
"""

LEASE_MAX_REQUESTS = 8
LEASE_SECONDS = 1.0
LEASE_MIN_REQUESTS_PER_SECOND = 20  # below this, every request is its own round trip


class RateLimiter:
    def __init__(self, redis_url: str, endpoint_key: str, requests_per_minute: int, tokens_per_minute: int) -> None:
        self.client = aioredis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self.script = self.client.register_script(_TAKE)
        self.keys = [f"touchstone:rl:{endpoint_key}:rpm", f"touchstone:rl:{endpoint_key}:tpm"]
        self.limits = [requests_per_minute, requests_per_minute / 60.0, tokens_per_minute, tokens_per_minute / 60.0]
        per_second = requests_per_minute / 60.0
        self.lease_size = max(1, min(LEASE_MAX_REQUESTS, int(per_second // LEASE_MIN_REQUESTS_PER_SECOND)))
        self._leased_requests = 0
        self._leased_tokens = 0
        self._leased_at = 0.0

    def _take_leased(self, tokens: int) -> bool:
        if time.monotonic() - self._leased_at > LEASE_SECONDS:
            self._leased_requests = self._leased_tokens = 0  # stale: let it lapse, never revive it
        if self._leased_requests < 1 or self._leased_tokens < tokens:
            return False
        self._leased_requests -= 1
        self._leased_tokens -= tokens
        return True

    async def acquire(self, tokens: int) -> float:
        """Wait until one request of ``tokens`` tokens is allowed; returns seconds waited."""
        waited = 0.0
        while True:
            if self._take_leased(tokens):
                return waited
            granted, wait = (await self.script(keys=self.keys, args=[*self.limits, tokens, self.lease_size])).split()
            if int(granted) > 0:
                # Another request of this loop may have drawn on the old lease meanwhile: add to it.
                self._leased_requests += int(granted) - 1
                self._leased_tokens += (int(granted) - 1) * tokens
                self._leased_at = time.monotonic()
                return waited
            pause = min(float(wait), 5.0)
            await asyncio.sleep(pause)
            waited += pause

    async def close(self) -> None:
        await self.client.aclose()
