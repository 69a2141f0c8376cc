"""`Limiter`: the tiers' limits with an injected clock (minute window, day, tokens, slots)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from eventstore import MemoryRecorder, Metadata
from eventstore.events.session import ModelResponded, TurnStarted
from lynkr.gateway import Admission, Limiter, LimitSettings, Principal, RateLimitRefusal
from lynkr.gateway._tiers import DEFAULT_TIERS

NOON = datetime(2026, 12, 6, 12, 0, tzinfo=UTC).timestamp()


class Clock:
    """A settable clock."""

    def __init__(self, now: float = NOON) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def key(key_id: str = "lk_a", tier: str = "free", user: str = "ann") -> Principal:
    return Principal(key_id=key_id, user=user, tier=tier, scopes=frozenset({"anthropic-proxy"}),
                     via="key")


def admit_done(limiter: Limiter, principal: Principal, usage: dict[str, int] | None = None
               ) -> Admission | RateLimitRefusal:
    """Admit and finish one request (its turn started), returning the admission."""
    admitted = limiter.admit(principal)
    if isinstance(admitted, Admission):
        admitted.release(started=True, usage=usage or {})
    return admitted


def test_eleventh_request_inside_a_minute_is_refused_with_retry_after() -> None:
    """Free tier: 10 per minute; the 11th is refused until the first leaves the window."""
    clock = Clock()
    limiter = Limiter(LimitSettings(), now=clock)
    for i in range(10):
        clock.now = NOON + i
        assert isinstance(admit_done(limiter, key()), Admission)
    clock.now = NOON + 30
    refused = limiter.admit(key())
    assert isinstance(refused, RateLimitRefusal)
    assert (refused.limit, refused.retry_after) == ("requests_per_minute", 30)
    clock.now = NOON + 60  # the first request (at NOON) is now outside the window
    assert isinstance(admit_done(limiter, key()), Admission)


def test_day_limit_holds_until_midnight_in_the_configured_zone() -> None:
    """100 a day, then 429 until local midnight (Europe/Berlin: 23:00 UTC in winter)."""
    clock = Clock()
    limiter = Limiter(LimitSettings(tz="Europe/Berlin"), now=clock)
    for i in range(100):
        clock.now = NOON + i * 61  # never 10 in a minute
        assert isinstance(admit_done(limiter, key()), Admission)
    refused = limiter.admit(key())
    assert isinstance(refused, RateLimitRefusal)
    assert refused.limit == "requests_per_day"
    midnight = datetime(2026, 12, 6, 23, 0, tzinfo=UTC).timestamp()
    assert refused.retry_after == math.ceil(midnight - clock.now)
    clock.now = midnight - 1
    assert isinstance(limiter.admit(key()), RateLimitRefusal)
    clock.now = midnight
    assert isinstance(admit_done(limiter, key()), Admission)


def test_tokens_per_day_refuse_after_the_turn_that_crosses_them() -> None:
    """A turn admitted under 10,000 tokens finishes; the next request is refused."""
    limiter = Limiter(LimitSettings(), now=Clock())
    admit_done(limiter, key(), {"input_tokens": 6000, "output_tokens": 1000,
                                "cache_read_input_tokens": 50_000})
    assert isinstance(admit_done(limiter, key(), {"input_tokens": 2000,
                                                  "cache_creation_input_tokens": 1500}),
                      Admission)
    refused = limiter.admit(key())
    assert isinstance(refused, RateLimitRefusal)
    assert refused.limit == "tokens_per_day"
    assert dict(refused.headers)[b"anthropic-ratelimit-tokens-remaining"] == b"0"


def test_cache_reads_do_not_count() -> None:
    """Cache reads are not counted against tokens/day (the documented rule)."""
    limiter = Limiter(LimitSettings(), now=Clock())
    admit_done(limiter, key(), {"input_tokens": 10, "cache_read_input_tokens": 90_000})
    assert limiter.statistics(key())["day_tokens"] == 10


def test_third_concurrent_request_is_refused_and_slots_come_back() -> None:
    """Free tier: 2 at once; a released slot admits the next."""
    limiter = Limiter(LimitSettings(), now=Clock())
    first, second = limiter.admit(key()), limiter.admit(key())
    assert isinstance(first, Admission)
    assert isinstance(second, Admission)
    third = limiter.admit(key())
    assert isinstance(third, RateLimitRefusal)
    assert third.limit == "concurrent"
    first.release(started=True)
    first.release(started=True)  # idempotent
    assert isinstance(limiter.admit(key()), Admission)
    assert limiter.statistics(key())["in_flight"] == 2


def test_a_request_that_starts_no_turn_is_given_back() -> None:
    """A request refused after admission (bad body, loop guard) does not count."""
    limiter = Limiter(LimitSettings(), now=Clock())
    admitted = limiter.admit(key())
    assert isinstance(admitted, Admission)
    admitted.release(started=False)
    assert limiter.statistics(key()) == {"minute_requests": 0, "day_requests": 0,
                                         "day_tokens": 0, "in_flight": 0}


def test_limits_by_user_share_one_budget_across_keys() -> None:
    """LYNKR_LIMITS_BY=user: two keys of one user count together; by key they do not."""
    for by, expected in (("user", RateLimitRefusal), ("key", Admission)):
        limiter = Limiter(LimitSettings(by=by), now=Clock())
        for i in range(10):
            admit_done(limiter, key("lk_a" if i % 2 else "lk_b"))
        assert isinstance(limiter.admit(key("lk_c")), expected)


def test_unlimited_tier_counts_nothing_and_sends_no_headers() -> None:
    """Enterprise: always admitted, no rate-limit headers."""
    limiter = Limiter(LimitSettings(), now=Clock())
    for _ in range(1000):
        admitted = limiter.admit(key(tier="enterprise"))
        assert isinstance(admitted, Admission)
        assert admitted.headers == []


def test_headers_report_the_tighter_request_window() -> None:
    """requests-* report whichever of per-minute and per-day has less left; RFC 3339 reset."""
    limiter = Limiter(LimitSettings(), now=Clock())
    admitted = limiter.admit(key())
    assert isinstance(admitted, Admission)
    headers = dict(admitted.headers)
    assert headers[b"anthropic-ratelimit-requests-limit"] == b"10"
    assert headers[b"anthropic-ratelimit-requests-remaining"] == b"9"
    assert headers[b"anthropic-ratelimit-requests-reset"] == b"2026-12-06T12:01:00Z"
    assert headers[b"anthropic-ratelimit-tokens-limit"] == b"10000"
    assert headers[b"anthropic-ratelimit-tokens-reset"] == b"2026-12-07T00:00:00Z"


def test_an_unknown_tier_gets_the_free_limits() -> None:
    """A principal naming a tier nobody configured is limited like free, not unlimited."""
    limiter = Limiter(LimitSettings(), now=Clock())
    assert LimitSettings().tier("gold") == DEFAULT_TIERS["free"]
    for _ in range(10):
        admit_done(limiter, key(tier="gold"))
    assert isinstance(limiter.admit(key(tier="gold")), RateLimitRefusal)


def _turn(recorder: MemoryRecorder, session: str, turn: int, key_id: str,
          usage: dict[str, int]) -> None:
    meta = Metadata(key_id=key_id)
    recorder.append(f"session-{session}", turn * 2 - 2, [TurnStarted(
        turn=turn, request_id=f"r{turn}", model="m", stream=False)], metadata=meta)
    ref, data = recorder.blob({"content": []})
    recorder.append(f"session-{session}", turn * 2 - 1, [ModelResponded(
        turn=turn, message=ref, stop_reason="end_turn", usage=usage, latency_ms=1.0)],
        metadata=meta, blobs=[(ref, data)])


def test_warm_rebuilds_the_counts_from_the_log() -> None:
    """After a restart the day's requests and tokens and the minute's requests are back."""
    recorder = MemoryRecorder()
    for turn in (1, 2, 3):
        _turn(recorder, "s", turn, "lk_a", {"input_tokens": 3000, "output_tokens": 500})
    _turn(recorder, "t", 1, "lk_b", {"input_tokens": 7})
    now = recorder.read_all(0, 100)[-1].recorded_at + 1
    limiter = Limiter(LimitSettings(), now=lambda: now)
    limiter.warm(recorder)
    assert limiter.statistics(key("lk_a")) == {"minute_requests": 3, "day_requests": 3,
                                               "day_tokens": 10_500, "in_flight": 0}
    assert isinstance(limiter.admit(key("lk_a")), RateLimitRefusal)  # tokens/day
    later = Limiter(LimitSettings(), now=lambda: now + 86_400)
    later.warm(recorder)
    assert later.statistics(key("lk_a"))["day_tokens"] == 0


def test_warm_by_user_maps_keys_to_their_users_from_the_gateway_stream() -> None:
    """LYNKR_LIMITS_BY=user after a restart: two keys' turns count for their one user."""
    from eventstore.events.gateway import KeyCreated

    recorder = MemoryRecorder()
    recorder.append("gateway", 0, [KeyCreated(
        key_id=k, name=k, user="ann", tier="free", scopes=("anthropic-proxy",),
        secret_sha256=k * 16, prefix="lk-x", created_at=0.0) for k in ("lk_a", "lk_b")])
    _turn(recorder, "s", 1, "lk_a", {"input_tokens": 1})
    _turn(recorder, "t", 1, "lk_b", {"input_tokens": 2})
    _turn(recorder, "u", 1, "jwt:bob", {"input_tokens": 4})
    now = recorder.read_all(0, 100)[-1].recorded_at + 1
    limiter = Limiter(LimitSettings(by="user"), now=lambda: now)
    limiter.warm(recorder)
    assert limiter.statistics(key("lk_c", user="ann"))["day_requests"] == 2
    assert limiter.statistics(key("lk_c", user="ann"))["day_tokens"] == 3
    assert limiter.statistics(key("jwt:bob", user="bob"))["day_tokens"] == 4
