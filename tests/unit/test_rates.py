"""Per-session rate limits on model calls: a sliding minute counted by the second, the wait
until enough of it has aged out, and a node's memory of them bounded."""

from __future__ import annotations

from theazo.core.rates import MemoryRates, RateBucket, RateLimits

T0 = 1_800_000_000.0  # seconds since the epoch, on a bucket's edge


def test_requests_are_counted_in_a_sliding_minute() -> None:
    limits = RateLimits(requests_per_minute=2, tokens_per_minute=100)
    rates = MemoryRates()
    assert rates.count_call("s", limits, T0) is None
    assert rates.count_call("s", limits, T0 + 10) is None
    refused = rates.count_call("s", limits, T0 + 10.5)
    assert refused is not None and "2 model calls" in refused.reason
    assert refused.retry_after_seconds == 50  # the first call ages out at T0 + 60
    assert rates.count_call("other", limits, T0 + 10.5) is None  # per session
    assert rates.count_call("s", limits, T0 + 59.9) is not None  # refused: not counted
    assert rates.count_call("s", limits, T0 + 60) is None


def test_tokens_are_counted_when_answers_are_metered() -> None:
    limits = RateLimits(requests_per_minute=0, tokens_per_minute=100)
    rates = MemoryRates()
    assert rates.count_call("s", limits, T0) is None
    rates.count_tokens("s", limits, 60, T0)
    assert rates.count_call("s", limits, T0 + 5) is None  # 60 used: under 100
    rates.count_tokens("s", limits, 60, T0 + 5)
    refused = rates.count_call("s", limits, T0 + 6)
    assert refused is not None and "120 tokens" in refused.reason
    assert refused.retry_after_seconds == 54  # the first 60 age out at T0 + 60
    assert rates.count_call("s", limits, T0 + 60) is None


def test_the_wait_is_until_enough_buckets_have_left_the_window() -> None:
    limits = RateLimits(requests_per_minute=3)
    now = T0 + 30.2
    window = [RateBucket(limits.bucket(T0 + s), requests=1) for s in (0, 10, 20)]
    # Under the limit once the first call's bucket has left: at T0 + 60.
    assert limits.judge(window, now) == limits.judge(reversed(window), now)
    refused = limits.judge(window, now)
    assert refused is not None and refused.retry_after_seconds == 30
    # Buckets that left the window count for nothing, whoever still holds them.
    assert limits.judge([RateBucket(limits.bucket(T0 - 1), requests=99)], T0 + 59) is None
    # One bucket over the limit by itself: until it leaves.
    heavy = RateLimits(tokens_per_minute=10).judge([RateBucket(limits.bucket(T0), 0, 50)], T0)
    assert heavy is not None and heavy.retry_after_seconds == 60


def test_no_limits_refuse_nothing() -> None:
    limits = RateLimits()
    assert not limits.enabled
    assert limits.judge([RateBucket(limits.bucket(T0), 10**6, 10**9)], T0) is None


def test_a_nodes_memory_forgets_sessions_idle_for_a_minute() -> None:
    limits = RateLimits(requests_per_minute=10)
    rates = MemoryRates()
    for index in range(100):
        rates.count_call(f"s{index}", limits, T0)
    assert len(rates._sessions) == 100
    rates.count_call("later", limits, T0 + 61)
    assert list(rates._sessions) == ["later"]
