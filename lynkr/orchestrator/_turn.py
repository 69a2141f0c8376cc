"""One turn end to end: session, route, record, call upstream, shape, record, answer.

Nothing is appended for a request rejected before it reaches a backend (no provider
configured → 503 with no events). Once the turn has begun, it always ends with one of
`ModelResponded`, `UpstreamFailed` or `StreamAborted` — also when the client goes away,
which cancels the upstream request. Before a turn begins, the session's loop guard may
refuse the request (`SessionLoopStopped`, a 400 the client shows). Upstream content
Lynkr could not translate is counted in `ModelResponded.unknown_parts` and logged once
per session and part type (type and key names, never the text). **Acknowledged means
durable**: the non-streaming body is returned, and the streaming `message_stop` frame is
sent, only after `ModelResponded` is committed.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog
import trio

from actors import LoopGuard
from lynkr.errors import LynkrError, StreamBrokenError
from lynkr.gateway import ANONYMOUS, LimitSettings, Principal, TaskRouter
from lynkr.orchestrator._cache import CacheProbe, PromptCache, cache_frames
from lynkr.orchestrator._call import (
    CallStats,
    OpenedStream,
    ProviderHandle,
    fetch_body,
    map_httpx_errors,
    open_stream,
)
from lynkr.orchestrator._loop import AgentLoop
from lynkr.orchestrator._record import (
    LoopStoppedError,
    SessionRecorder,
    TurnTicket,
    turn_request,
)
from lynkr.orchestrator._route import Route, choose_route
from lynkr.orchestrator._session import SessionRef, resolve_session
from lynkr.orchestrator._shape import aborted, error_frame, failed, responded, usage_of
from lynkr.providers import (
    ProviderSettings,
    StreamOutcome,
    UnknownParts,
    count_request_tokens,
    encode_message_stream,
)

__all__ = ["MessagesRequest", "Orchestrator", "TurnInfo", "TurnResult"]

log = structlog.get_logger()

_RECORD_TIMEOUT = 10.0  # seconds a shielded "client left" append may take
_UNKNOWN_LOGGED_MAX = 4096  # (session, part type) pairs remembered for log-once


@dataclass(slots=True)
class MessagesRequest:
    """A validated `/v1/messages` request as the HTTP layer hands it over (the session
    command's input, built from it, is `actors.TurnRequest`)."""

    request_id: str
    headers: Mapping[str, str]  # lower-case names
    body: dict[str, Any]
    request_bytes: int
    principal: Principal = ANONYMOUS  # who sent it (`lynkr.gateway`; ANONYMOUS: auth off)


@dataclass(slots=True)
class TurnInfo:
    """What the canonical log line reports about a turn (filled as the turn goes)."""

    session: SessionRef | None = None
    provider: str | None = None
    backend_model: str | None = None
    turn: int | None = None
    attempts: int = 0
    usage: dict[str, int] = field(default_factory=dict)
    outcome: str = "rejected"
    cache_key: str | None = None  # the prompt cache's key of the request (None: not cached)
    upstream: CallStats | None = None  # the upstream call, once made (the overhead figures)
    upstream_ms: float | None = None  # its duration, once its answer ended


@dataclass(slots=True)
class TurnResult:
    """A non-streaming answer (`message`) or a stream of SSE frames (`frames`)."""

    session: SessionRef
    message: dict[str, Any] | None = None
    frames: AsyncIterator[bytes] | None = None


class Orchestrator:
    """Runs turns against the configured providers, recording each one."""

    def __init__(self, settings: ProviderSettings, handles: Mapping[str, ProviderHandle],
                 turns: SessionRecorder, *, loop: AgentLoop | None = None,
                 cache: PromptCache | None = None) -> None:
        self.settings = settings
        self.handles = dict(handles)
        self.turns = turns
        self.cache = cache
        self.loop = loop if loop is not None and loop.enabled else None
        self.loop_guard = loop_guard_of(settings)
        self.router: TaskRouter | None = None  # routing by task (`lynkr.gateway._routing`)
        self.tiers: LimitSettings | None = None  # for a tier's allowed models
        self._unknown_logged: OrderedDict[tuple[str, str], None] = OrderedDict()

    async def run_turn(self, request: MessagesRequest, info: TurnInfo) -> TurnResult:
        """Run one turn.

        Raises:
            LynkrError: the turn failed before any byte went to the client (the HTTP
                layer answers with its status and Anthropic error JSON).
        """
        session = info.session = resolve_session(request.headers, request.body)
        tier = self.tiers.tier(request.principal.tier) if self.tiers is not None else None
        tokens = None
        if self.router is not None and self.router.needs_count(request.request_bytes):
            tokens = await trio.to_thread.run_sync(count_request_tokens, request.body)
        route = choose_route(self.settings, str(request.body.get("model", "")),
                             router=self.router, body=request.body, tier=tier,
                             request_bytes=request.request_bytes, tokens=tokens)
        handle = self.handles[route.provider]
        info.provider, info.backend_model = route.provider, route.backend_model
        loop, cache = self.loop, self.cache
        plan = None if loop is None else await loop.plan(
            request.body, request.headers, session.session_id,
            None if request.principal is ANONYMOUS else request.principal.user)
        if plan is not None and not plan.server:
            plan = None  # no server tool offered to this request: a plain turn
        # The prompt cache keys what the upstream would get (with server tools: their
        # definitions and the spliced history too).
        probe = None if cache is None else cache.probe(
            request.body if plan is None else plan.body, route, request.headers,
            "" if request.principal is ANONYMOUS else f"user:{request.principal.user}")
        if probe is not None and probe.entry is not None:  # prompt cache: a hit (_cache.py)
            ticket = await self._begin(request, session, route)
            info.turn, info.cache_key = ticket.turn, probe.key
            return await self._cache_hit(ticket, probe, request.body, info)
        upstream = None if plan is not None else handle.adapter.build(
            request.body, route.backend_model, request.headers)
        ticket = await self._begin(request, session, route)
        info.turn = ticket.turn
        if cache is not None and probe is not None:  # prompt cache: a miss (_cache.py)
            info.cache_key = await cache.missed(self.turns, ticket, probe)
        if loop is not None and plan is not None:  # the agent loop (_loop.py)
            if request.body.get("stream"):
                frames = await loop.open(self, plan, ticket, handle, info, request.body)
                return TurnResult(session, frames=frames)
            message = await loop.complete(self, plan, ticket, handle, info, request.body)
            return TurnResult(session, message=message)
        assert upstream is not None
        if upstream.stream:
            frames = await self._open_stream(request, ticket, handle, upstream, info)
            return TurnResult(session, frames=frames)
        message = await self._complete(request, ticket, handle, upstream, info)
        return TurnResult(session, message=message)

    async def _begin(self, request: MessagesRequest, session: SessionRef,
                     route: Route) -> TurnTicket:
        principal = request.principal
        command = turn_request(request.request_id, request.body, request.headers,
                               request.request_bytes, session, self.loop_guard,
                               key_id=None if principal is ANONYMOUS else principal.key_id)
        try:
            return await self.turns.begin(command, session, route)
        except LoopStoppedError as exc:
            log.warning("loop_stopped", session_id=session.session_id, reason=exc.message)
            raise

    async def _complete(self, request: MessagesRequest, ticket: TurnTicket,
                        handle: ProviderHandle,
                        upstream: Any, info: TurnInfo) -> dict[str, Any]:
        stats = info.upstream = CallStats()
        async with self.ending_failures(ticket, handle, stats, info):
            data = await fetch_body(handle, upstream, self.settings.resilience, stats)
            unknown = UnknownParts()
            message = handle.adapter.parse(data, request.body, unknown)
            self.log_unknown(ticket, handle.name, unknown)
        if self.cache is not None:  # prompt cache: store a tool-free answer
            message = await self.cache.store(self.turns, ticket, info.cache_key, message,
                                             rewrite_usage=True)
        info.upstream_ms = (time.perf_counter() - stats.started) * 1000
        event, blobs = responded(ticket.turn, message, data, provider=handle.name,
                                 latency_ms=info.upstream_ms,
                                 first_byte_ms=stats.first_byte_ms, unknown=unknown.counts)
        await self.turns.finish(ticket, event, blobs)
        info.attempts, info.usage, info.outcome = stats.attempts, usage_of(message), "ok"
        return message

    async def _cache_hit(self, ticket: TurnTicket, probe: CacheProbe, body: Mapping[str, Any],
                         info: TurnInfo) -> TurnResult:
        """End a turn the prompt cache answers: `CacheHit`, then `ModelResponded` (provider
        `cache`, no upstream bytes, latency 0), both committed before any byte goes out."""
        assert self.cache is not None
        message = await self.cache.hit(self.turns, ticket, probe, str(body.get("model", "")))
        # replay --verify: a streamed hit is sent as `cache_frames` (body + stop)
        sent = (hashlib.sha256(b"".join(encode_message_stream(message))).hexdigest()  # type: ignore[arg-type]
                if body.get("stream") else None)
        event, blobs = responded(ticket.turn, message, b"", provider="cache", latency_ms=0.0,
                                 first_byte_ms=None, client_digest=sent)
        await self.turns.finish(ticket, event, blobs)
        info.usage, info.outcome = usage_of(message), "cache_hit"
        if body.get("stream"):
            return TurnResult(ticket.session, frames=cache_frames(message))
        return TurnResult(ticket.session, message=message)

    @asynccontextmanager
    async def ending_failures(self, ticket: TurnTicket, handle: ProviderHandle,
                               stats: CallStats, info: TurnInfo) -> AsyncIterator[None]:
        """Before any byte reached the client: a failure ends the turn with
        `UpstreamFailed` (and is raised on for the HTTP status), the client leaving ends
        it with `StreamAborted`."""
        try:
            yield
        except LynkrError as exc:
            info.attempts, info.outcome = stats.attempts, "upstream_failed"
            await self.turns.finish(
                ticket, failed(ticket.turn, exc, provider=handle.name, attempts=stats.attempts))
            raise
        except trio.Cancelled:
            info.outcome = "client_disconnected"
            await self.abort_shielded(ticket, handle.name, "client_disconnected", None, b"")
            raise

    def log_unknown(self, ticket: TurnTicket, provider: str, unknown: UnknownParts) -> None:
        """Log each untranslated part type once per session (type and keys, no content)."""
        session_id = ticket.session.session_id
        for kind in unknown.counts:
            key = (session_id, kind)
            if key in self._unknown_logged:
                continue
            self._unknown_logged[key] = None
            if len(self._unknown_logged) > _UNKNOWN_LOGGED_MAX:
                self._unknown_logged.popitem(last=False)
            log.warning("upstream_part_untranslated", session_id=session_id, provider=provider,
                        turn=ticket.turn, part_type=kind, keys=list(unknown.keys.get(kind, ())))

    async def _open_stream(self, request: MessagesRequest, ticket: TurnTicket,
                           handle: ProviderHandle, upstream: Any,
                           info: TurnInfo) -> AsyncIterator[bytes]:
        stats = info.upstream = CallStats()
        async with self.ending_failures(ticket, handle, stats, info):
            opened = await open_stream(handle, upstream, self.settings.resilience, stats,
                                       request.body)
        info.attempts = stats.attempts
        return self._relay(ticket, handle, opened, stats, info)

    async def _relay(self, ticket: TurnTicket, handle: ProviderHandle, opened: OpenedStream,
                     stats: CallStats, info: TurnInfo) -> AsyncIterator[bytes]:
        """Forward SSE bytes; commit the turn's outcome before its last frame (module doc)."""
        relay, settled = opened.relay, False
        sent = hashlib.sha256()  # replay --verify: every byte the client is sent
        try:
            if opened.first:
                sent.update(opened.first)
                yield opened.first
            out, error = b"", None
            try:
                with map_httpx_errors(handle.name):
                    async for chunk in opened.chunks:
                        out = relay.feed(chunk)
                        if relay.done:
                            break
                        if out:
                            sent.update(out)
                            yield out
                    else:
                        out = relay.end()
            except LynkrError as exc:
                error = exc
            outcome = relay.outcome
            self.log_unknown(ticket, handle.name, relay.unknown)
            if error is None and outcome is not None and outcome.complete:
                if out:
                    sent.update(out)
                    yield out
                sent.update(relay.stop_frame)
                await self._responded(ticket, handle, stats, info, outcome, sent.hexdigest())
                settled = True
                yield relay.stop_frame
                return
            reason = _reason(error) if error else (
                f"{outcome.error_type}: {outcome.error_message}" if outcome else "stream failed")
            await self.abort(ticket, handle.name, reason, relay.raw)
            settled = True
            info.outcome = "stream_aborted"
            yield error_frame(error) if error else out
        finally:
            with trio.CancelScope(shield=True):
                await opened.aclose()
            if not settled:
                info.outcome = "client_disconnected"
                await self.abort_shielded(ticket, handle.name, "client_disconnected", None,
                                           relay.raw)

    async def _responded(self, ticket: TurnTicket, handle: ProviderHandle, stats: CallStats,
                         info: TurnInfo, outcome: StreamOutcome, client_digest: str) -> None:
        message = dict(outcome.message or {})
        if self.cache is not None:  # prompt cache: store a tool-free answer
            await self.cache.store(self.turns, ticket, info.cache_key, message,
                                   rewrite_usage=False)
        info.upstream_ms = (time.perf_counter() - stats.started) * 1000
        event, blobs = responded(ticket.turn, message, outcome.raw, provider=handle.name,
                                 latency_ms=info.upstream_ms,
                                 first_byte_ms=stats.first_byte_ms, unknown=outcome.unknown,
                                 client_digest=client_digest)
        await self.turns.finish(ticket, event, blobs)
        info.usage, info.outcome = usage_of(message), "ok"

    async def abort(self, ticket: TurnTicket, provider: str, reason: str, raw: bytes) -> None:
        event, blobs = aborted(ticket.turn, reason, provider=provider, partial=None, raw=raw)
        await self.turns.finish(ticket, event, blobs)

    async def abort_shielded(self, ticket: TurnTicket, provider: str, reason: str,
                              partial: Mapping[str, Any] | None, raw: bytes) -> None:
        event, blobs = aborted(ticket.turn, reason, provider=provider, partial=partial, raw=raw)
        with trio.move_on_after(_RECORD_TIMEOUT) as scope:
            scope.shield = True
            await self.turns.finish(ticket, event, blobs)
        if scope.cancelled_caught:
            log.error("abort_not_recorded", session_id=ticket.session.session_id,
                      turn=ticket.turn)


def loop_guard_of(settings: ProviderSettings) -> LoopGuard | None:
    """The session loop guard the settings ask for (None when both rules are off)."""
    if settings.loop_empty_answers is None and settings.loop_repeats is None:
        return None
    return LoopGuard(empty_answers=settings.loop_empty_answers, repeats=settings.loop_repeats,
                     window_s=settings.loop_window_s)


def _reason(exc: LynkrError) -> str:
    kind = "stream_broken" if isinstance(exc, StreamBrokenError) else exc.error_type
    return f"{kind}: {exc.message}"
