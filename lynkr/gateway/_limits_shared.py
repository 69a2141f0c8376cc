"""`SharedLimiter`: the tiers' limits counted in a store every gateway shares.

With `LYNKR_LIMITS_STORE=postgresql` (the store's own database) or
`LYNKR_LIMITS_STORE=postgresql://…` (another one) every gateway asks the same
`PostgresLimitsStore` (`lynkr.gateway._limits_store`), so a free key's 11th request in a
minute is refused whichever gateway it lands on. The rules are those of the in-memory
`Limiter` (sliding minute, days ending at midnight in `LYNKR_LIMITS_TZ`, tokens/day,
concurrency); the messages and `anthropic-ratelimit-*` headers are built by the same
functions from the counts the store returns.

Each call runs the blocking store method in a worker thread. If the store cannot be
reached the request fails closed: `LimitsStoreUnavailableError`, a 503 naming the
limits store. A release that cannot reach the store is logged; its slot expires with
its lease. The counters live in the database, so nothing is rebuilt from the log at
start; clocks of the gateways should agree (NTP) since each decides with its own.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import structlog
import trio

from lynkr.gateway._limits import (
    WINDOW_S,
    Admission,
    Budget,
    Limiter,
    LimitsStoreUnavailableError,
    RateLimitRefusal,
    counted_tokens,
    limit_headers,
    refusal_of,
)
from lynkr.gateway._principal import Principal
from lynkr.gateway._tiers import LimitSettings, Tier

if TYPE_CHECKING:  # psycopg loads only when a shared store is configured
    from lynkr.gateway._limits_store import AdmitResult, PostgresLimitsStore

__all__ = ["SharedAdmission", "SharedLimiter", "open_limiter"]

log = structlog.get_logger()

_RELEASE_TIMEOUT_S = 5.0


class SharedAdmission(Admission):
    """An admission whose slot and counts live in the shared store."""

    __slots__ = ("_shared", "_slot")

    def __init__(self, shared: SharedLimiter, subject: str, slot: str, at: float,
                 day_end: float, headers: list[tuple[bytes, bytes]]) -> None:
        super().__init__(None, subject, None, at, headers)
        self._shared = shared
        self._slot = slot
        self._day_end = day_end

    async def aclose(self, *, started: bool, usage: Mapping[str, int] | None = None) -> None:
        """Free the slot and count the turn in the store (idempotent; shielded, so a
        cancelled request still gives its slot back)."""
        if self._released:
            return
        self._released = True
        tokens = counted_tokens(usage) if started and usage else 0
        with trio.CancelScope(shield=True), trio.move_on_after(_RELEASE_TIMEOUT_S):
            await self._shared.release(self.subject or "", self._slot, started=started,
                                       at=self.at, admit_day_end=self._day_end, tokens=tokens)


class SharedLimiter:
    """The tiers' limits, counted in a `PostgresLimitsStore` (module docstring)."""

    def __init__(self, settings: LimitSettings, store: PostgresLimitsStore, *,
                 now: Callable[[], float] = time.time) -> None:
        """Args:
            settings: tiers and counting rules.
            store: the shared counters (opened).
            now: the clock (epoch seconds).
        """
        self.settings = settings
        self.store = store
        self.now = now
        self._days = Limiter(settings, now=now)  # local-midnight arithmetic and subjects

    @classmethod
    def open(cls, settings: LimitSettings, url: str, *, ttl: float) -> SharedLimiter:
        """A limiter on a new store for `url` (blocking: run it in a thread).

        Raises:
            LimitsStoreUnavailableError: the database cannot be reached.
        """
        from lynkr.gateway._limits_store import PostgresLimitsStore

        store = PostgresLimitsStore(url, gateway=f"gw-{uuid.uuid4().hex[:12]}", ttl=ttl)
        try:
            store.open()
        except LimitsStoreUnavailableError:
            store.close()
            raise
        return cls(settings, store)

    async def acquire(self, principal: Principal) -> Admission | RateLimitRefusal:
        """Admit (counting the request, taking a slot) or refuse, deciding in the store.

        Raises:
            LimitsStoreUnavailableError: the store cannot be reached (fail closed).
        """
        tier = self.settings.tier(principal.tier)
        if tier.unlimited:
            return Admission.unlimited()
        slot = uuid.uuid4().hex
        result, subject, now, day_end = await self._ask(principal, tier, slot,
                                                        minute_only=False)
        budget = _budget(result, day_end)
        if result.refused is not None:
            return self._refusal(tier, subject, budget, now)
        budget.minute.append(now)
        budget.day_requests += 1
        return SharedAdmission(self, subject, slot, now, day_end,
                               limit_headers(tier, budget, now))

    async def acount_free_route(self, principal: Principal) -> RateLimitRefusal | None:
        """With `LYNKR_LIMITS_COUNT_FREE_ROUTES`: count a free route per minute.

        Raises:
            LimitsStoreUnavailableError: the store cannot be reached (fail closed).
        """
        if not self.settings.count_free_routes:
            return None
        tier = self.settings.tier(principal.tier)
        if tier.requests_per_minute is None:
            return None
        result, subject, now, day_end = await self._ask(principal, tier, "",
                                                        minute_only=True)
        if result.refused is None:
            return None
        return self._refusal(tier, subject, _budget(result, day_end), now)

    async def _ask(self, principal: Principal, tier: Tier, slot: str, *,
                   minute_only: bool) -> tuple[AdmitResult, str, float, float]:
        """The store's decision for one request, with its subject, time and day's end."""
        now = self.now()
        subject = self._days.subject_of(principal)
        day_end = self._days.day_end(now)
        limits = (tier.requests_per_minute, tier.requests_per_day, tier.tokens_per_day,
                  tier.concurrent)

        def admit() -> AdmitResult:
            return self.store.admit(subject, now, window=WINDOW_S, day_end=day_end,
                                    limits=limits, slot=slot, minute_only=minute_only)

        return await trio.to_thread.run_sync(admit), subject, now, day_end

    def _refusal(self, tier: Tier, subject: str, budget: Budget,
                 now: float) -> RateLimitRefusal:
        decided = refusal_of(tier, budget, now)
        assert decided is not None  # the store refused on the same counts
        limit, retry, message = decided
        return RateLimitRefusal(limit, subject, tier.name, retry,
                                f"rate limit exceeded: {message} (tier {tier.name}); "
                                f"retry in {retry} s", limit_headers(tier, budget, now))

    async def release(self, subject: str, slot: str, *, started: bool, at: float,
                      admit_day_end: float, tokens: int) -> None:
        """End an admitted request in the store; a store that cannot be reached is
        logged (the slot expires with its lease)."""
        day_end = self._days.day_end(self.now())

        def release() -> None:
            self.store.release(subject, slot, started=started, at=at,
                               admit_day_end=admit_day_end, day_end=day_end, tokens=tokens)

        try:
            await trio.to_thread.run_sync(release)
        except LimitsStoreUnavailableError:
            log.warning("limits_release_lost", subject=subject, started=started, tokens=tokens)

    async def serve_heartbeat(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Renew this gateway's slots every third of their lease, until cancelled."""
        task_status.started()
        while True:
            await trio.sleep(self.store.ttl / 3)
            try:
                await trio.to_thread.run_sync(self.store.heartbeat, self.now())
            except LimitsStoreUnavailableError:
                log.warning("limits_heartbeat_failed")

    async def ready(self) -> bool:
        """True if the store answers (readiness)."""
        return await trio.to_thread.run_sync(self.store.reachable)

    def close(self) -> None:
        """Close the store's pool."""
        self.store.close()


def _budget(result: AdmitResult, day_end: float) -> Budget:
    """The store's counts as a `Budget`, for the shared message and header functions."""
    return Budget(minute=deque(result.minute), day_end=day_end,
                  day_requests=result.day_requests, day_tokens=result.day_tokens,
                  in_flight=result.in_flight)


@asynccontextmanager
async def open_limiter(settings: LimitSettings, store_url: str,
                       recorder: Any) -> AsyncIterator[Limiter | SharedLimiter]:
    """The gateway's limiter: in memory (rebuilt from the log's tail of `recorder`), or
    shared in PostgreSQL with its slot heartbeat running until exit (module docstring).

    Raises:
        LimitsStoreUnavailableError: the shared store cannot be reached at start.
    """
    url = settings.shared_url(store_url)
    if url is None:
        limiter = Limiter(settings)
        await trio.to_thread.run_sync(limiter.warm, recorder)  # counters survive restarts
        yield limiter
        return
    shared = await trio.to_thread.run_sync(
        lambda: SharedLimiter.open(settings, url, ttl=settings.slot_ttl))
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(shared.serve_heartbeat)
            yield shared
            nursery.cancel_scope.cancel()
    finally:
        shared.close()
