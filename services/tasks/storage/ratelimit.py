"""Per-user request rate (SPEC §9): adapters of ``domain.ports.RateLimiter``, a token
bucket with continuous refill, in process or shared through Redis.

The refill is computed from the time elapsed since the last update and the
fractional remainder is kept, so a client calling faster than the refill rate
while empty still gets exactly ``refill_per_s`` requests per second through
(the earlier system reset its clock on every request and starved them)."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis.asyncio as aioredis

#: Refills are sums of float products: without a tolerance, two half tokens
#: can add up to 0.9999999 and a request due exactly now would be refused.
_EPSILON = 1e-9


class LocalTokenBucket:
    """In-process buckets: right for a single Tasks process. ``capacity``: requests a
    bucket holds; ``refill_per_s``: requests per second added back; ``clock``: seconds."""

    def __init__(
        self, capacity: int, refill_per_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = float(capacity)
        self.rate = refill_per_s
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    async def acquire(self, key: str) -> float:
        now = self._clock()
        tokens, last = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens >= 1 - _EPSILON:
            self._buckets[key] = (tokens - 1, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / self.rate

    async def close(self) -> None:
        self._buckets.clear()


# Redis keeps the clock (TIME), so every Tasks process sees the same buckets
# whatever their own clocks say. Floats cross the Lua boundary as strings.
_SCRIPT = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(bucket[1]) or capacity
local ts = tonumber(bucket[2]) or now
if now > ts then
  tokens = math.min(capacity, tokens + (now - ts) * rate)
  ts = now
end
local wait = 0
if tokens >= 1 - 1e-9 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisTokenBucket:
    """Buckets shared by every Tasks process through one atomic script."""

    def __init__(
        self, url: str, capacity: int, refill_per_s: float, prefix: str = "taskmesh:rl:"
    ) -> None:
        self._redis = aioredis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._script = self._redis.register_script(_SCRIPT)
        self._args = (capacity, refill_per_s)
        self._prefix = prefix

    async def acquire(self, key: str) -> float:
        wait = await self._script(keys=[self._prefix + key], args=list(self._args))
        return float(wait)

    async def close(self) -> None:
        await self._redis.aclose()
