"""Per-user request rate: continuous refill, in-process and shared through Redis."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from services.tasks.storage.ratelimit import LocalTokenBucket, RedisTokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_bucket_allows_a_burst_then_refuses_with_the_wait():
    clock = FakeClock()
    bucket = LocalTokenBucket(capacity=3, refill_per_s=2, clock=clock)
    assert [await bucket.acquire("u") for _ in range(3)] == [0, 0, 0]
    assert await bucket.acquire("u") == pytest.approx(0.5)
    assert await bucket.acquire("other") == 0  # buckets are per user


async def test_refill_keeps_fractions_for_a_client_calling_faster_than_the_rate():
    clock = FakeClock()
    bucket = LocalTokenBucket(capacity=1, refill_per_s=10, clock=clock)
    await bucket.acquire("u")
    allowed = 0
    for _ in range(100):  # 5 s of calls every 50 ms while empty: 10 per second get through
        clock.now += 0.05
        allowed += await bucket.acquire("u") == 0
    assert allowed == 50


async def test_refill_never_exceeds_capacity():
    clock = FakeClock()
    bucket = LocalTokenBucket(capacity=2, refill_per_s=100, clock=clock)
    clock.now += 3600
    assert [await bucket.acquire("u") == 0 for _ in range(3)] == [True, True, False]


async def test_redis_bucket_is_shared_by_every_process(redis_url):
    user = f"user-{uuid.uuid4()}"
    # Two limiters stand for two Tasks processes; a near-zero refill makes the
    # capacity the whole allowance during the test.
    first = RedisTokenBucket(redis_url, capacity=5, refill_per_s=0.001)
    second = RedisTokenBucket(redis_url, capacity=5, refill_per_s=0.001)
    try:
        waits = await asyncio.gather(
            *(limiter.acquire(user) for limiter in (first, second) for _ in range(6))
        )
        assert sum(w == 0 for w in waits) == 5
        refused = [w for w in waits if w > 0]
        assert len(refused) == 7
        assert all(0 < w <= 1000 for w in refused)  # at most one refill interval away
    finally:
        await first.close()
        await second.close()


async def test_redis_bucket_refills_continuously(redis_url):
    user = f"user-{uuid.uuid4()}"
    limiter = RedisTokenBucket(redis_url, capacity=1, refill_per_s=1000)
    try:
        assert await limiter.acquire(user) == 0
        # At 1,000 tokens/s a token is back within a millisecond or two: poll
        # until the bucket lets the next request through.
        for _ in range(1000):
            if await limiter.acquire(user) == 0:
                break
        else:
            pytest.fail("the Redis bucket never refilled")
    finally:
        await limiter.close()
