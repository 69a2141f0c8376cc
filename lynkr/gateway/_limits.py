"""`Limiter`: per-key (or per-user) rate limits of the tiers, checked before a request.

What is counted, per subject (the key, or with `LYNKR_LIMITS_BY=user` the user):
- **requests per minute** — a *sliding window log*: the admission times of the last
  60 s are kept (at most the tier's limit of them), so the limit is exact at every
  instant: the (N+1)-th request inside any 60 s window is refused, and `retry-after`
  is when the oldest of those N leaves the window (rounded up to a whole second, so a
  client that waits exactly that long is admitted). No burst at a window's edge, no
  approximation error.
- **requests per day** and **tokens per day** — reset at midnight in `LYNKR_LIMITS_TZ`
  (zoneinfo, so DST days are 23 or 25 hours long). Tokens are input + output + cache
  creation tokens of completed turns (`ModelResponded.usage`); **cache reads are not
  counted** (they are re-sent context the backend does not compute again, and a Lynkr
  prompt-cache hit reports its whole prompt as cache reads without calling any backend).
- **concurrent requests** — a slot held from admission until the answer (or stream)
  ends, released on every exit path (`Admission.release` in a `finally`).

A request is checked before it starts; one admitted under the limit always finishes
(so tokens/day can be exceeded by the turn that crosses it; the next is refused). A
request counts only if it starts a turn (`TurnStarted`): one refused later (invalid
body, loop guard, no provider) is given back. That makes the counters a function of
the event log, so `warm` rebuilds them exactly after a restart from the log's tail:
the `TurnStarted` times and `ModelResponded` usage since local midnight (and the last
minute), by each turn's `Metadata.key_id`. Everything runs on the trio thread: no locks.

These counters are one gateway's. With several gateways, `LYNKR_LIMITS_STORE=postgresql`
keeps them in PostgreSQL instead (`lynkr.gateway._limits_shared`), deciding with the
same `refusal_of` and `limit_headers`; the HTTP layer calls `acquire` and
`Admission.aclose`, which either kind answers.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from lynkr.errors import LynkrError, RateLimitedError
from lynkr.gateway._principal import Principal
from lynkr.gateway._tiers import LimitSettings, Tier

if TYPE_CHECKING:
    from eventstore import Recorder

__all__ = ["Admission", "Budget", "Limiter", "LimitsStoreUnavailableError", "RateLimitRefusal",
           "counted_tokens", "limit_headers", "record_refusal", "refusal_of"]

log = structlog.get_logger()

WINDOW_S = 60.0
_CONCURRENCY_RETRY_S = 1  # a slot frees when some running request ends: retry soon
_WARM_PAGE = 2000


class LimitsStoreUnavailableError(LynkrError, status=503, error_type="api_error"):
    """The shared limits store cannot be reached: requests are refused (fail closed)."""


def counted_tokens(usage: Mapping[str, int]) -> int:
    """Tokens a completed turn adds to tokens/day: input + output + cache creation
    (cache reads are not counted; module docstring)."""
    return (int(usage.get("input_tokens", 0) or 0) + int(usage.get("output_tokens", 0) or 0)
            + int(usage.get("cache_creation_input_tokens", 0) or 0))


def _rfc3339(epoch: float) -> bytes:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(math.ceil(epoch))).encode()


@dataclass(slots=True)
class Budget:
    """One subject's counters."""

    minute: deque[float] = field(default_factory=deque)  # admission times, oldest first
    day_end: float = 0.0  # the local midnight these day counters end at
    day_requests: int = 0
    day_tokens: int = 0
    in_flight: int = 0


@dataclass(frozen=True, slots=True)
class RateLimitRefusal:
    """Why a request was refused: the limit hit, when to retry, the headers to send."""

    limit: str  # "requests_per_minute", "requests_per_day", "tokens_per_day", "concurrent"
    subject: str
    tier: str
    retry_after: int  # whole seconds
    message: str
    headers: list[tuple[bytes, bytes]]

    def error(self) -> RateLimitedError:
        """The `RateLimitedError` the client gets (429 `rate_limit_error`)."""
        return RateLimitedError(self.message, retry_after=self.retry_after)


class Admission:
    """An admitted request: its concurrency slot and its count, until `release`.
    `Admission.unlimited()` is one that nothing counts (no limiter, an unlimited tier)."""

    __slots__ = ("_budget", "_day_end", "_limiter", "_released", "at", "headers", "subject")

    def __init__(self, limiter: Limiter | None, subject: str | None, budget: Budget | None,
                 at: float, headers: list[tuple[bytes, bytes]]) -> None:
        self._limiter = limiter
        self._budget = budget
        self._released = False
        self._day_end = budget.day_end if budget is not None else 0.0
        self.subject = subject
        self.at = at
        self.headers = headers  # anthropic-ratelimit-* for this response

    @classmethod
    def unlimited(cls) -> Admission:
        """An admission that counts nothing and sends no headers."""
        return cls(None, None, None, 0.0, [])

    def release(self, *, started: bool, usage: Mapping[str, int] | None = None) -> None:
        """End the request: free its slot; count its tokens if its turn completed
        (`usage`), or give its request back if it never started a turn. Idempotent."""
        budget, limiter = self._budget, self._limiter
        if self._released or budget is None or limiter is None:
            return
        self._released = True
        budget.in_flight -= 1
        if not started:
            limiter.give_back(budget, self.at, self._day_end)
        elif usage:
            limiter.add_tokens(budget, counted_tokens(usage))

    async def aclose(self, *, started: bool, usage: Mapping[str, int] | None = None) -> None:
        """`release`, awaitable: the one call the HTTP layer makes for every admission
        (a shared limiter's admissions override it to tell their store)."""
        self.release(started=started, usage=usage)


class Limiter:
    """The tiers' limits for every subject (module docstring). Use on one thread."""

    def __init__(self, settings: LimitSettings, *, now: Callable[[], float] = time.time,
                 user_of: Callable[[str], str | None] | None = None) -> None:
        """Args:
            settings: tiers and counting rules.
            now: the clock (epoch seconds); tests inject one to cross midnight.
            user_of: a key id's user, for `LYNKR_LIMITS_BY=user` when rebuilding
                from the log (default: the users of the `gateway` stream's
                `KeyCreated` events; JWT key ids `jwt:<sub>` map to `<sub>`).
        """
        self.settings = settings
        self.now = now
        self.user_of = user_of
        self._zone = settings.zone
        self._budgets: dict[str, Budget] = {}
        self._day_start = self._day_end = 0.0

    # -- the local day ----------------------------------------------------------------
    def day_end(self, now: float) -> float:
        """The end (next local midnight, epoch) of the day `now` is in."""
        if not self._day_start <= now < self._day_end:
            local = datetime.fromtimestamp(now, self._zone)
            start = local.replace(hour=0, minute=0, second=0, microsecond=0)
            end = (start + timedelta(days=1, hours=3)).replace(hour=0)  # DST-proof
            self._day_start, self._day_end = start.timestamp(), end.timestamp()
        return self._day_end

    def day_start(self, now: float) -> float:
        """Epoch seconds of the local midnight that began `now`'s day."""
        self.day_end(now)
        return self._day_start

    def subject_of(self, principal: Principal) -> str:
        """Whose counters a request counts on: its key, or with `by = "user"` its user."""
        return principal.user if self.settings.by == "user" else principal.key_id

    def _budget(self, subject: str, now: float) -> Budget:
        budget = self._budgets.get(subject)
        if budget is None:
            budget = self._budgets[subject] = Budget()
        day_end = self.day_end(now)
        if budget.day_end != day_end:
            budget.day_end, budget.day_requests, budget.day_tokens = day_end, 0, 0
        minute = budget.minute
        while minute and minute[0] <= now - WINDOW_S:
            minute.popleft()
        return budget

    # -- admission ----------------------------------------------------------------------
    async def acquire(self, principal: Principal) -> Admission | RateLimitRefusal:
        """`admit`, awaitable: the one call the HTTP layer makes (a shared limiter,
        `lynkr.gateway._limits_shared`, asks its store here)."""
        return self.admit(principal)

    async def acount_free_route(self, principal: Principal) -> RateLimitRefusal | None:
        """`count_free_route`, awaitable (see `acquire`)."""
        return self.count_free_route(principal)

    def admit(self, principal: Principal) -> Admission | RateLimitRefusal:
        """Check every limit of the principal's tier; admit (counting the request and
        taking a slot) or refuse with the limit hit."""
        tier = self.settings.tier(principal.tier)
        if tier.unlimited:
            return Admission.unlimited()
        now = self.now()
        subject = self.subject_of(principal)
        budget = self._budget(subject, now)
        refused = refusal_of(tier, budget, now)
        if refused is not None:
            limit, retry, message = refused
            return RateLimitRefusal(limit, subject, tier.name, retry,
                                    f"rate limit exceeded: {message} (tier {tier.name}); "
                                    f"retry in {retry} s",
                                    limit_headers(tier, budget, now))
        budget.minute.append(now)
        budget.day_requests += 1
        budget.in_flight += 1
        return Admission(self, subject, budget, now, limit_headers(tier, budget, now))

    def count_free_route(self, principal: Principal) -> RateLimitRefusal | None:
        """With `LYNKR_LIMITS_COUNT_FREE_ROUTES`: count a health/models/count_tokens
        request against requests/min only (in memory: such requests are not events, so
        this count does not survive a restart). Returns the refusal if over."""
        if not self.settings.count_free_routes:
            return None
        tier = self.settings.tier(principal.tier)
        rpm = tier.requests_per_minute
        if rpm is None:
            return None
        now = self.now()
        subject = self.subject_of(principal)
        budget = self._budget(subject, now)
        if len(budget.minute) >= rpm:
            oldest = budget.minute[-rpm] if rpm else now
            retry = max(1, math.ceil(oldest + WINDOW_S - now))
            return RateLimitRefusal("requests_per_minute", subject, tier.name, retry,
                                    f"rate limit exceeded: {rpm} requests per minute "
                                    f"(tier {tier.name}); retry in {retry} s",
                                    limit_headers(tier, budget, now))
        budget.minute.append(now)
        return None

    # -- counting -----------------------------------------------------------------------
    def give_back(self, budget: Budget, at: float, day_end: float) -> None:
        """Un-count a request admitted at `at` (on the day ending `day_end`) that never
        started a turn."""
        with contextlib.suppress(ValueError):  # already outside the window
            budget.minute.remove(at)
        if budget.day_end == day_end:  # not since reset by a new day
            budget.day_requests = max(0, budget.day_requests - 1)

    def add_tokens(self, budget: Budget, tokens: int) -> None:
        """Count a completed turn's tokens on today's budget."""
        day_end = self.day_end(self.now())
        if budget.day_end != day_end:
            budget.day_end, budget.day_requests, budget.day_tokens = day_end, 0, 0
        budget.day_tokens += tokens

    def statistics(self, principal: Principal) -> Mapping[str, int]:
        """The principal's current counts (for tests and `lynkr usage --limits`)."""
        now = self.now()
        budget = self._budget(self.subject_of(principal), now)
        return {"minute_requests": len(budget.minute), "day_requests": budget.day_requests,
                "day_tokens": budget.day_tokens, "in_flight": budget.in_flight}

    # -- rebuilding from the log ----------------------------------------------------------
    def warm(self, recorder: Recorder) -> int:
        """Rebuild the minute and day counters from the log's tail (module docstring).
        Blocking (reads the database): run it in a thread before serving. Returns the
        number of events read."""
        from eventstore.events.session import ModelResponded, TurnStarted

        if self.settings.by == "user" and self.user_of is None:
            self.user_of = _key_users(recorder).get
        now = self.now()
        since = min(self.day_start(now), now - WINDOW_S)
        turns: dict[tuple[str, int], str] = {}
        read = 0
        for record in recorder.read_since(since, _WARM_PAGE):
            read += 1
            match record.event:
                case TurnStarted() as ev if record.metadata.key_id:
                    turns[(record.stream_id, ev.turn)] = record.metadata.key_id
                    self._replay_request(record.metadata.key_id, record.recorded_at, now)
                case ModelResponded() as ev:
                    key = turns.pop((record.stream_id, ev.turn), None) or record.metadata.key_id
                    if key and record.recorded_at >= self._day_start:
                        budget = self._budget(self._subject_of_key(key), now)
                        budget.day_tokens += counted_tokens(ev.usage)
        log.info("limits_warmed", events_read=read, subjects=len(self._budgets))
        return read

    def _subject_of_key(self, key_id: str) -> str:
        if self.settings.by != "user":
            return key_id
        user = self.user_of(key_id) if self.user_of is not None else None
        if user is None and key_id.startswith("jwt:"):
            user = key_id[4:]
        return user or key_id

    def _replay_request(self, key_id: str, at: float, now: float) -> None:
        budget = self._budget(self._subject_of_key(key_id), now)
        if at > now - WINDOW_S:
            budget.minute.append(at)
        if at >= self._day_start:
            budget.day_requests += 1


def refusal_of(tier: Tier, budget: Budget, now: float) -> tuple[str, int, str] | None:
    """(limit, retry-after seconds, message) of the first limit hit, or None."""
    to_midnight = max(1, math.ceil(budget.day_end - now))
    rpm = tier.requests_per_minute
    if rpm is not None and len(budget.minute) >= rpm:
        oldest = budget.minute[-rpm] if rpm else now
        return ("requests_per_minute", max(1, math.ceil(oldest + WINDOW_S - now)),
                f"{rpm} requests per minute")
    if tier.requests_per_day is not None and budget.day_requests >= tier.requests_per_day:
        return "requests_per_day", to_midnight, f"{tier.requests_per_day} requests per day"
    if tier.tokens_per_day is not None and budget.day_tokens >= tier.tokens_per_day:
        return "tokens_per_day", to_midnight, f"{tier.tokens_per_day} tokens per day"
    if tier.concurrent is not None and budget.in_flight >= tier.concurrent:
        return ("concurrent", _CONCURRENCY_RETRY_S,
                f"{tier.concurrent} concurrent requests")
    return None

def limit_headers(tier: Tier, budget: Budget, now: float) -> list[tuple[bytes, bytes]]:
    """Anthropic's `anthropic-ratelimit-requests-*` (the tighter of per-minute and
    per-day) and `-tokens-*` (per day); an unlimited dimension sends none."""
    headers: list[tuple[bytes, bytes]] = []
    windows = []
    if tier.requests_per_minute is not None:
        rpm = tier.requests_per_minute
        reset = budget.minute[-rpm] + WINDOW_S if 0 < rpm <= len(budget.minute) else (
            budget.minute[0] + WINDOW_S if budget.minute else now)
        windows.append((rpm - len(budget.minute), rpm, reset))
    if tier.requests_per_day is not None:
        windows.append((tier.requests_per_day - budget.day_requests, tier.requests_per_day,
                        budget.day_end))
    if windows:
        remaining, limit, reset = min(windows)
        headers += [(b"anthropic-ratelimit-requests-limit", str(limit).encode()),
                    (b"anthropic-ratelimit-requests-remaining",
                     str(max(0, remaining)).encode()),
                    (b"anthropic-ratelimit-requests-reset", _rfc3339(reset))]
    if tier.tokens_per_day is not None:
        left = max(0, tier.tokens_per_day - budget.day_tokens)
        headers += [(b"anthropic-ratelimit-tokens-limit", str(tier.tokens_per_day).encode()),
                    (b"anthropic-ratelimit-tokens-remaining", str(left).encode()),
                    (b"anthropic-ratelimit-tokens-reset", _rfc3339(budget.day_end))]
    return headers


def _key_users(recorder: Recorder) -> dict[str, str]:
    """Each API key's user, from the `KeyCreated` events of the `gateway` stream."""
    from eventstore.events.gateway import KeyCreated

    return {r.event.key_id: r.event.user for r in recorder.read_stream("gateway")
            if isinstance(r.event, KeyCreated)}


async def record_refusal(store: Any, refusal: RateLimitRefusal, *, request_id: str,
                         key_id: str, route: str, session_id: str | None = None) -> None:
    """Append the `RateLimited` event of a refusal (`store`: an `actors.EventStore`;
    `session_id`: the session the request named, if any); a store that cannot take it
    is logged, and the client still gets its 429."""
    from eventstore import ANY_VERSION, EventStoreError, Metadata
    from eventstore.events.limits import LIMITS_STREAM, RateLimited

    event = RateLimited(request_id=request_id, subject=refusal.subject, tier=refusal.tier,
                        limit=refusal.limit, retry_after=refusal.retry_after, route=route,
                        session_id=session_id)
    log.warning("rate_limited", subject=refusal.subject, tier=refusal.tier,
                limit=refusal.limit, retry_after=refusal.retry_after, route=route,
                session_id=session_id)
    try:
        await store.append(LIMITS_STREAM, ANY_VERSION, [event],
                           metadata=Metadata(request_id=request_id, key_id=key_id))
    except EventStoreError as exc:
        log.exception("rate_limited_not_recorded", error_type=type(exc).__name__, error=str(exc))
