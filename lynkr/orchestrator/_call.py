"""The upstream call: circuit breaker, bounded retries before the first byte, error mapping.

Every attempt is admitted by the backend's `ProviderActor` (read from its published
`ProviderGate` while the breaker is closed, else asked: an open breaker fails fast
with `overloaded_error`), sends the request on the actor's pooled client,
and reports the outcome back. Connection errors, timeouts, 429 and 5xx are retried
with exponential backoff and full jitter — but only while nothing has been sent to
the client: a non-streaming call retries until its whole body is read, a streaming
call until its first frames are ready. httpx errors are mapped to `LynkrError`s here
(`HTTPX_ERRORS`); nothing from httpx escapes this module.

**When a POST is sent to a backend more than once**: only here, only as a retry that is
counted (`CallStats.attempts`, at most `UPSTREAM_MAX_RETRIES` after the first) and
logged (`upstream_retry` with the attempt and the error type), and only before any byte
of the answer reached the client — after a connection error or timeout, a 429, a
retryable 5xx, an overloaded or broken stream before its first frame, or the keep-alive
race (a reused connection the backend closed before answering: retried at once, without
backoff, and not counted against the backend's health). The transport never resends
by itself (`lynkr/providers/_transport.py`).
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import structlog
import trio

from actors import CircuitOpenError, ProviderGate
from lynkr.errors import (
    LynkrError,
    ProviderConnectError,
    ProviderOverloadedError,
    ProviderStaleConnectionError,
    ProviderTimeoutError,
    StreamBrokenError,
    UpstreamError,
    UpstreamStatusError,
)
from lynkr.providers import (
    RETRYABLE_STATUSES,
    Adapter,
    ResilienceSettings,
    StaleConnectionError,
    StreamRelay,
    UpstreamRequest,
    send_pooled,
)

__all__ = [
    "HTTPX_ERRORS",
    "CallStats",
    "OpenedStream",
    "ProviderHandle",
    "backoff_delay",
    "fetch_body",
    "map_httpx_errors",
    "open_stream",
]

log = structlog.get_logger()
T = TypeVar("T")

HTTPX_ERRORS: tuple[tuple[type[httpx.HTTPError], type[UpstreamError], str], ...] = (
    (StaleConnectionError, ProviderStaleConnectionError,
     "the backend closed a reused connection before answering"),
    (httpx.ConnectTimeout, ProviderTimeoutError, "connecting to the backend timed out"),
    (httpx.ReadTimeout, ProviderTimeoutError, "the backend did not answer in time"),
    (httpx.WriteTimeout, ProviderTimeoutError, "sending the request to the backend timed out"),
    (httpx.PoolTimeout, ProviderTimeoutError, "no free connection to the backend in time"),
    (httpx.ConnectError, ProviderConnectError, "cannot connect to the backend"),
    (httpx.RemoteProtocolError, ProviderConnectError, "the backend broke the connection"),
    (httpx.ReadError, ProviderConnectError, "reading from the backend failed"),
    (httpx.WriteError, ProviderConnectError, "sending to the backend failed"),
    (httpx.CloseError, ProviderConnectError, "closing the backend connection failed"),
    (httpx.ProxyError, ProviderConnectError, "the proxy to the backend failed"),
    (httpx.LocalProtocolError, UpstreamError, "invalid request to the backend"),
    (httpx.UnsupportedProtocol, UpstreamError, "the backend URL has an unsupported scheme"),
    (httpx.DecodingError, StreamBrokenError, "the backend's answer could not be decoded"),
    (httpx.TooManyRedirects, UpstreamError, "the backend redirected too often"),
    (httpx.HTTPError, UpstreamError, "the backend call failed"),
)
"""httpx exception → (Lynkr error class, message), most specific first."""


@dataclass(frozen=True, slots=True)
class ProviderHandle:
    """The trio side's view of one backend: its name, adapter and actor."""

    name: str
    adapter: Adapter
    actor: Any  # pykka.ActorProxy[ProviderActor]; Any because proxies are dynamic


@dataclass(slots=True)
class CallStats:
    """What the call learnt: attempts made and when the first byte came."""

    started: float = field(default_factory=time.perf_counter)
    attempts: int = 0
    first_byte_ms: float | None = None

    def mark_first_byte(self) -> None:
        """Note the first upstream byte (only the first call counts)."""
        if self.first_byte_ms is None:
            self.first_byte_ms = (time.perf_counter() - self.started) * 1000


@dataclass(slots=True)
class OpenedStream:
    """A streaming call past its first SSE bytes: ready to relay to the client.

    If the whole upstream stream arrived while priming, `relay.done` is already true.
    """

    response: httpx.Response
    chunks: AsyncIterator[bytes]
    relay: StreamRelay
    first: bytes

    async def aclose(self) -> None:
        """Close the upstream response (cancels the upstream request if still running).

        httpx reads through a chain of nested async generators; closing only the outer
        one leaves the inner ones to trio's garbage-collection hook. Draining inside an
        already-cancelled scope makes the innermost read raise `Cancelled`, which ends
        every generator of the chain, without waiting for the upstream.
        """
        with trio.CancelScope(shield=True):
            with trio.CancelScope() as drain:
                drain.cancel()
                async for _ in self.chunks:
                    pass
            await self.response.aclose()


@contextmanager
def map_httpx_errors(provider: str) -> Iterator[None]:
    """Re-raise httpx errors as `UpstreamError`s (see `HTTPX_ERRORS`)."""
    try:
        yield
    except httpx.HTTPError as exc:
        for httpx_cls, lynkr_cls, message in HTTPX_ERRORS:
            if isinstance(exc, httpx_cls):
                raise lynkr_cls(f"{provider}: {message} ({type(exc).__name__})") from exc
        raise  # unreachable: httpx.HTTPError is the last row


def backoff_delay(attempt: int, settings: ResilienceSettings, retry_after: float | None) -> float:
    """Seconds to wait before attempt `attempt + 1`: exponential, full jitter, `retry-after`."""
    ceiling = min(settings.retry_max_delay, settings.retry_base_delay * 2 ** (attempt - 1))
    delay = random.uniform(ceiling / 2, ceiling)
    return max(delay, retry_after or 0.0)


def _retryable(exc: LynkrError, settings: ResilienceSettings, after: float | None) -> bool:
    if after is not None and after > settings.retry_max_delay:
        return False  # the client should wait that long itself, with the header we pass on
    if isinstance(exc, UpstreamStatusError):
        return exc.upstream_status in RETRYABLE_STATUSES
    return isinstance(exc, (ProviderConnectError, ProviderTimeoutError, StreamBrokenError,
                            ProviderOverloadedError))


def _counts_as_down(exc: LynkrError) -> bool:
    if isinstance(exc, ProviderStaleConnectionError):
        return False  # the keep-alive race says nothing about the backend's health
    if isinstance(exc, UpstreamStatusError):
        return exc.upstream_status >= 500
    return isinstance(exc, (ProviderConnectError, ProviderTimeoutError, ProviderOverloadedError))


_GATES: dict[str, ProviderGate] = {}  # actor urn -> its published gate (asked once)


async def _gate(handle: ProviderHandle) -> ProviderGate:
    urn = handle.actor.actor_ref.actor_urn
    gate = _GATES.get(urn)
    if gate is None:
        gate = await handle.actor.gate()
        if len(_GATES) >= 64:  # systems come and go (tests): forget the stopped ones
            _GATES.clear()
        _GATES[urn] = gate
    return gate


async def _admit(handle: ProviderHandle) -> httpx.AsyncClient:
    """The client to call with: published while the breaker is closed, else asked for."""
    published = (await _gate(handle)).client
    if published is not None:
        return published  # type: ignore[return-value]  # the factory makes httpx clients
    try:
        client: httpx.AsyncClient = await handle.actor.admit()
    except CircuitOpenError as exc:
        raise ProviderOverloadedError(f"{exc}", retry_after=exc.retry_after) from exc
    return client


async def call_with_retries(
    handle: ProviderHandle,
    settings: ResilienceSettings,
    stats: CallStats,
    attempt_fn: Callable[[httpx.AsyncClient], Awaitable[T]],
) -> T:
    """Run `attempt_fn` on an admitted client, retrying what is retryable.

    Raises:
        LynkrError: the last attempt's mapped error (or `ProviderOverloadedError` while the
            breaker is open).
    """
    while True:
        client = await _admit(handle)
        stats.attempts += 1
        outcome = "neutral"
        try:
            with map_httpx_errors(handle.name):
                result = await attempt_fn(client)
        except LynkrError as exc:
            outcome = "down" if _counts_as_down(exc) else "neutral"
            if not _retryable(exc, settings, exc.retry_after) or (
                    stats.attempts > settings.max_retries):
                raise
            delay = 0.0 if isinstance(exc, ProviderStaleConnectionError) else (
                backoff_delay(stats.attempts, settings, exc.retry_after))
            log.info("upstream_retry", provider=handle.name, attempt=stats.attempts,
                     error=exc.error_type, delay_s=round(delay, 3))
            _report(handle, outcome, exc)
            outcome = "reported"
            await trio.sleep(delay)
        else:
            outcome = "ok"
            return result
        finally:
            _report_final(handle, outcome)


def _report(handle: ProviderHandle, outcome: str, exc: LynkrError | None = None) -> None:
    """Tell the provider actor how the attempt went (a success while all is well is only
    counted on its gate: `ProviderGate.count_success`)."""
    gate = _GATES.get(handle.actor.actor_ref.actor_urn)
    if outcome == "ok":
        if gate is not None and gate.count_success():
            return
        handle.actor.report_success()
    elif outcome == "down":
        handle.actor.report_failure(exc.error_type if exc else "error")
    elif outcome == "neutral":
        handle.actor.report_neutral()
    else:
        return
    if gate is not None:
        gate.mark_reported(outcome == "ok")


def _report_final(handle: ProviderHandle, outcome: str) -> None:
    if outcome != "reported":
        _report(handle, outcome)


async def fetch_body(
    handle: ProviderHandle, request: UpstreamRequest, settings: ResilienceSettings,
    stats: CallStats,
) -> bytes:
    """A non-streaming call: the whole upstream body of a 2xx answer."""

    async def attempt(client: httpx.AsyncClient) -> bytes:
        response = await send_pooled(client, "POST", request.url, headers=request.headers,
                                     content=request.body)
        try:
            stats.mark_first_byte()
            data = await response.aread()
        finally:
            with trio.CancelScope(shield=True):  # a cancelled close would leak the socket
                await response.aclose()
        if response.status_code >= 400:
            raise handle.adapter.error(response.status_code, data, response.headers)
        return data

    return await call_with_retries(handle, settings, stats, attempt)


async def open_stream(
    handle: ProviderHandle, request: UpstreamRequest, settings: ResilienceSettings,
    stats: CallStats, body: Mapping[str, Any],
) -> OpenedStream:
    """A streaming call, retried until its first frames are ready for the client."""

    async def attempt(client: httpx.AsyncClient) -> OpenedStream:
        response = await send_pooled(client, "POST", request.url,
                                     headers={**request.headers, "accept-encoding": "identity"},
                                     content=request.body)
        try:
            stats.mark_first_byte()
            if response.status_code < 400:
                return await _prime(response, handle.adapter.relay(body))
            data = await response.aread()
        except BaseException:
            with trio.CancelScope(shield=True):
                await response.aclose()
            raise
        with trio.CancelScope(shield=True):  # a cancelled close would leak the socket
            await response.aclose()
        raise handle.adapter.error(response.status_code, data, response.headers)

    return await call_with_retries(handle, settings, stats, attempt)


async def _prime(response: httpx.Response, relay: StreamRelay) -> OpenedStream:
    """Read until there is something to send; a failure before that is retryable."""
    # aiter_raw: one generator we can close (aiter_bytes nests one it never closes);
    # the request asked for identity encoding, so raw bytes are the SSE text.
    encoded = response.headers.get("content-encoding", "identity") != "identity"
    chunks = response.aiter_bytes() if encoded else response.aiter_raw()
    first = b""
    while not first and not relay.done:
        try:
            chunk = await chunks.__anext__()
        except StopAsyncIteration:
            first = relay.end()
            break
        first = relay.feed(chunk)
    opened = OpenedStream(response, chunks, relay, first)
    outcome = relay.outcome
    if outcome is not None and not outcome.complete:
        message = outcome.error_message or "upstream stream failed"
        await opened.aclose()
        if outcome.error_type == "overloaded_error":
            raise ProviderOverloadedError(message)
        if outcome.untranslatable:
            raise UpstreamError(message)  # deterministic: asking again would give the same
        raise StreamBrokenError(message)
    return opened
