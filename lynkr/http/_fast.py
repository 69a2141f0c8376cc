"""The hot route on plain ASGI: `POST /v1/messages` without Quart's per-request machinery.

`GatewayApp` sits in front of the Quart app that `create_app` builds and serves
`/v1/messages` (POST, with any query string, e.g. `?beta=true`; any other method is a
405 in Anthropic's error JSON) itself — it is the one handler of that route, and of its
alias `/v1/messages/stream` (the same with `stream: true` forced); every other request
goes to Quart unchanged. Each request is authenticated by the app's `Authenticator`
(the `anthropic-proxy` scope) once its body is in, before its limits are checked or
anything is recorded; the `Principal` travels on `MessagesRequest.principal`.
Measured on hypercorn's trio worker, a trivial Quart route costs ~3 ms of CPU and a
bare ASGI handler ~0.3 ms, which is most of the gateway's budget per turn.

It keeps what the Quart route does: a `request-id` header on every answer, structlog's
`request_id` binding, the 32 MB body limit (413 `request_too_large`, checked on
`content-length` and while reading), the same validation and orchestrator, every
failure as Anthropic's error JSON with its status (`lynkr_error_parts`; a bug is a
logged generic 500), one canonical log line per request (for a stream, when it
ends; it feeds the app's metrics, `_metrics`), `x-lynkr-overhead-ms` on every answer
(Lynkr's own time before the headers, minus upstream time: for a stream, what Lynkr
spent before it sent the upstream request; `RequestLog.overhead_ms`),
SSE without any response timeout (frames that arrive while a write is under way
share the next one, `_FrameBatch`), and a client that disconnects cancels the turn (and
so the upstream request), exactly as quart-trio's connection handler does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import structlog
import trio
from quart_trio import QuartTrio

from lynkr import _json
from lynkr.errors import LynkrError
from lynkr.gateway import ANONYMOUS, Admission, Authenticator, Principal, record_refusal
from lynkr.http._api_keys import AUTH_EXTENSION
from lynkr.http._errors import (
    BODY_LIMIT,
    HTTP_ERROR_TYPES,
    error_json,
    lynkr_error_parts,
    retry_after_value,
    too_large_message,
)
from lynkr.http._logline import RequestLog, new_request_id
from lynkr.http._metrics import METRICS_EXTENSION
from lynkr.orchestrator import MessagesRequest, resolve_session
from lynkr.providers import parse_json_body, validate_messages_request

__all__ = ["GatewayApp"]

log = structlog.get_logger()

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

BODY_TIMEOUT = 120.0  # seconds to receive a request body (Quart's BODY_TIMEOUT here)
_JSON = (b"content-type", b"application/json")
_SSE = ((b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"))
_STREAM_ALIAS = "/v1/messages/stream"  # `/v1/messages` with `stream: true` forced
_PATHS = frozenset({"/v1/messages", _STREAM_ALIAS})
_SCOPE = "anthropic-proxy"


class _HttpFailure(Exception):
    """A failure at the HTTP level (body too large, too slow): status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _ClientGone(Exception):
    """The client disconnected before its request body was complete."""


class GatewayApp:
    """ASGI app: `POST /v1/messages` here, everything else through `app` (module doc)."""

    def __init__(self, app: QuartTrio) -> None:
        self.app = app
        self.system = app.extensions["lynkr"]
        self.auth: Authenticator = app.extensions[AUTH_EXTENSION]
        self.observe = app.extensions[METRICS_EXTENSION].observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] == "http" and scope["path"] in _PATHS:
            exchange = _Exchange(self.system, self.auth, scope, receive, send, self.observe)
            if scope["method"] == "POST":
                await exchange.run()
            else:
                await exchange.refuse_method(scope["method"])
        else:
            await self.app(scope, receive, send)  # type: ignore[arg-type]


class _Exchange:
    """One `/v1/messages` request and its answer."""

    def __init__(self, system: Any, auth: Authenticator, scope: Scope, receive: Receive,
                 send: Send, observe: Any = None) -> None:
        self.system = system
        self.auth = auth
        self.receive = receive
        self.send = send
        self.headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                        for k, v in scope["headers"]}
        self.record = RequestLog(request_id=new_request_id(), method="POST",
                                 path=scope["path"], sink=observe)
        self.started = False
        self.principal: Principal = ANONYMOUS  # set by authentication
        self.limit_headers: list[tuple[bytes, bytes]] = []  # anthropic-ratelimit-*

    async def run(self) -> None:
        """Read, run the turn, answer; the client leaving cancels whatever is under way."""
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=self.record.request_id)
        try:
            body = await self._read_body()
        except _ClientGone:
            return
        except _HttpFailure as exc:
            await self._error(exc.status, HTTP_ERROR_TYPES.get(exc.status, "api_error"),
                              exc.message)
            return
        try:
            self.principal = await self.auth.authenticate(self.headers, _SCOPE)
            self.record.key = self.principal.key_id
        except LynkrError as exc:  # 401 / 403: nothing recorded, nothing counted
            await self._error(*lynkr_error_parts(exc))
            return
        admission = await self._admit(body)
        if admission is None:
            return
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch_disconnect, nursery.cancel_scope)
                await self._answer(body)
                nursery.cancel_scope.cancel()
        finally:  # every exit: the slot comes back; a turn's tokens or an unused request
            info = self.record.turn
            await admission.aclose(started=info.turn is not None,
                                   usage=info.usage if info.outcome in ("ok", "cache_hit")
                                   else None)

    async def _admit(self, body: bytes) -> Admission | None:
        """The caller's tier limits, checked once the body is in (so a refused client is
        not cut off mid-send): the admission, or None after answering 429 (with
        `retry-after`, the `anthropic-ratelimit-*` headers and a `RateLimited` event
        naming the session of `body`, if it names one)."""
        limiter = self.system.limiter
        try:
            decided = (Admission.unlimited() if limiter is None
                       else await limiter.acquire(self.principal))
        except LynkrError as exc:  # the shared limits store is down: 503, fail closed
            await self._error(*lynkr_error_parts(exc))
            return None
        if isinstance(decided, Admission):
            self.limit_headers = decided.headers
            return decided
        self.limit_headers = decided.headers
        await record_refusal(self.system.store, decided, request_id=self.record.request_id,
                             key_id=self.principal.key_id, route=self.record.path,
                             session_id=self._session_of(body))
        error = decided.error()
        await self._error(error.status, error.error_type, error.message, error.retry_after)
        return None

    def _session_of(self, data: bytes) -> str | None:
        """The session a refused request names (parsed only on this path, so admitted
        requests pay nothing); None for a body that is not a valid request and names
        none in its headers, or one that would start a new, generated session."""
        try:
            body = parse_json_body(data)
            validate_messages_request(body)
        except LynkrError:
            body = {}
        session = resolve_session(self.headers, body)
        return None if session.source == "generated" else session.session_id

    async def refuse_method(self, method: str) -> None:
        """405 in Anthropic's error JSON: this path only takes POST."""
        self.record.method = method
        await self._respond(405, error_json("invalid_request_error",
                                            f"{method} is not allowed on {self.record.path}; "
                                            "use POST"),
                            [(b"allow", b"POST")])

    async def _read_body(self) -> bytes:
        """The whole body. One over the limit is still received (and dropped) before the
        413, as Quart does, so the client is not cut off while it is still sending."""
        declared = self.headers.get("content-length", "")
        too_large = declared.isdigit() and int(declared) > BODY_LIMIT
        parts: list[bytes] = []
        size = 0
        with trio.move_on_after(BODY_TIMEOUT):
            while True:
                message = await self.receive()
                if message["type"] == "http.disconnect":
                    raise _ClientGone
                chunk = message.get("body", b"")
                size += len(chunk)
                too_large = too_large or size > BODY_LIMIT
                if not too_large:
                    parts.append(chunk)
                if not message.get("more_body", False):
                    if too_large:
                        raise _HttpFailure(413, too_large_message())
                    return b"".join(parts)
        raise _HttpFailure(408, "the request body did not arrive in time")

    async def _watch_disconnect(self, scope: trio.CancelScope) -> None:
        while (await self.receive())["type"] != "http.disconnect":
            pass
        scope.cancel()

    async def _answer(self, data: bytes) -> None:
        record = self.record
        try:
            body = parse_json_body(data)
            if record.path == _STREAM_ALIAS and isinstance(body, dict):
                body["stream"] = True
            validate_messages_request(body)
            record.model, record.stream = str(body.get("model")), bool(body.get("stream"))
            turn = MessagesRequest(request_id=record.request_id, headers=self.headers, body=body,
                                   request_bytes=len(data), principal=self.principal)
            result = await self.system.orchestrator.run_turn(turn, record.turn)
        except LynkrError as exc:
            status, error_type, message, retry_after = lynkr_error_parts(exc)
            await self._error(status, error_type, message, retry_after)
            return
        except Exception as exc:  # a bug: logged with its traceback, answered generically
            log.exception("unhandled_error", error_type=type(exc).__name__)
            await self._error(500, "api_error", "internal error")
            return
        extra = [(b"x-session-id", result.session.session_id.encode())] \
            if result.session.generated else []
        if result.frames is None:
            await self._respond(200, _json.dumps(result.message), extra)
        else:
            await self._stream(result.frames, extra)

    async def _respond(self, status: int, body: bytes,
                       extra: list[tuple[bytes, bytes]]) -> None:
        headers = [_JSON, (b"content-length", str(len(body)).encode()),
                   (b"request-id", self.record.request_id.encode()), self._overhead(),
                   *self.limit_headers, *extra]
        try:
            await self.send({"type": "http.response.start", "status": status,
                             "headers": headers})
            await self.send({"type": "http.response.body", "body": body, "more_body": False})
        finally:  # after the write: the line is not on the client's critical path
            self.record.emit(status)

    def _overhead(self) -> tuple[bytes, bytes]:
        return (b"x-lynkr-overhead-ms", f"{self.record.overhead_ms():.2f}".encode())

    async def _error(self, status: int, error_type: str, message: str,
                     retry_after: float | None = None) -> None:
        extra = [] if retry_after is None else [
            (b"retry-after", retry_after_value(retry_after).encode())]
        await self._respond(status, error_json(error_type, message), extra)

    async def _stream(self, frames: AsyncIterator[bytes],
                      extra: list[tuple[bytes, bytes]]) -> None:
        headers = [*_SSE, (b"request-id", self.record.request_id.encode()), self._overhead(),
                   *self.limit_headers, *extra]
        try:
            await self.send({"type": "http.response.start", "status": 200, "headers": headers})
            async with trio.open_nursery() as nursery:
                batch = _FrameBatch()
                nursery.start_soon(batch.pull, frames)
                await batch.push(self.send)
        except Exception as exc:  # a bug mid-stream: nothing more can be said to the client
            log.exception("unhandled_error", error_type=type(exc).__name__)
        finally:
            await frames.aclose()  # type: ignore[attr-defined]
            self.record.emit(200)


class _FrameBatch:
    """Relays SSE frames; those that arrive while a write is under way share the next one.

    No frame is held back on purpose: a frame goes out as soon as the previous write is
    done, so a fast upstream's many small frames cost fewer socket writes, and a slow
    one's are relayed one by one as they come.
    """

    def __init__(self) -> None:
        self.pending: list[bytes] = []
        self.ready = trio.Event()
        self.ended = False

    async def pull(self, frames: AsyncIterator[bytes]) -> None:
        """Collect frames until the stream ends."""
        try:
            async for frame in frames:
                if frame:
                    self.pending.append(frame)
                    self.ready.set()
        finally:
            self.ended = True
            self.ready.set()

    async def push(self, send: Send) -> None:
        """Send what was collected, in batches; the last batch also ends the body."""
        while True:
            await self.ready.wait()
            self.ready = trio.Event()
            last = self.ended  # nothing can follow what is pending now
            body = b"".join(self.pending)
            self.pending.clear()
            if body or last:
                await send({"type": "http.response.body", "body": body, "more_body": not last})
            if last:
                return
