"""The connector's links to the gateway: the WebSocket, the polling fallback, reconnects.

`maintain_link` keeps one link open for a `Connector`, forever: it opens the
WebSocket (`ws`, `auto`) or polls (`poll`, or `auto` once the gateway refused the
upgrade with an HTTP status other than 401/403, or closed the socket with 4000, its
WebSocket disabled; polling then tells whether the key itself is refused; a close with
1008 is the key or user refused, over any transport), and after any
failure waits the settings' capped, jittered backoff before it tries again (`auto`
tries the WebSocket first each time). Over either link the connector registers
first, then runs three loops: receive calls, send results from the outbox, register
again when its tools change. The WebSocket also answers `ping`s, sends its own every
`ping_interval`, and drops a link silent for three of them.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import httpx
import structlog
import trio
import trio_websocket

from lynkr.tunnel._protocol import POLL_WAIT_S, CallMessage, ProtocolError, decode, encode

if TYPE_CHECKING:
    from lynkr.tunnel._connector import Connector

__all__ = ["maintain_link"]

log = structlog.get_logger()

_POLICY_VIOLATION = 1008  # close codes: lynkr.tunnel._protocol's docstring
_WS_DISABLED = 4000
_AUTH_STATUSES = (401, 403)
_SILENCE_LIMIT = 3  # ping intervals without a word from the gateway before the link drops
_MAX_MESSAGE = 64 * 1024 * 1024
_OPEN_TIMEOUT = 10.0
_CLOSE_TIMEOUT = 2.0


class _LinkLostError(Exception):
    """The link ended: the reason is the message."""


class _UpgradeRefusedError(Exception):
    """The gateway answered the WebSocket upgrade with an HTTP status (not 401/403)."""


async def maintain_link(connector: Connector) -> None:
    """Keep a link open for `connector` until cancelled (see module docstring).

    Raises:
        GatewayRefusedError: the gateway refused the key or the user.
    """
    settings = connector.settings
    attempt = 0
    use_ws = settings.transport != "poll"
    while True:
        connector.registered_once = False
        reason, retry_now = "", False
        connector.status.show("connecting", connector)
        try:
            await (_websocket_link(connector) if use_ws else _polling_link(connector))
        except* _UpgradeRefusedError as group:
            reason = str(_leaf(group))
            if settings.transport == "auto":
                log.warning("connector_websocket_refused", reason=reason,
                            fallback="polling")
                use_ws, retry_now = False, True
        except* (_LinkLostError, OSError, trio_websocket.HandshakeError,
                 trio_websocket.ConnectionClosed, httpx.HTTPError, ProtocolError) as group:
            reason = _describe(_leaf(group))
        if retry_now:
            continue
        if connector.registered_once:
            attempt = 0
        delay = settings.reconnect.delay(attempt)
        attempt += 1
        log.info("connector_link_lost", reason=reason, retry_in_s=round(delay, 2))
        await _wait_showing(connector, delay, reason)
        use_ws = settings.transport != "poll"


def _leaf(exc: BaseException) -> BaseException:
    """The first exception inside (possibly nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def _describe(exc: BaseException) -> str:
    if isinstance(exc, trio_websocket.ConnectionClosed) and exc.reason is not None:
        return f"closed: {exc.reason.code} {exc.reason.reason or ''}".strip()
    return str(exc) or type(exc).__name__


async def _wait_showing(connector: Connector, delay: float, reason: str) -> None:
    """Sleep `delay` seconds; a terminal sees the countdown."""
    end = trio.current_time() + delay
    while (left := end - trio.current_time()) > 0:
        connector.status.show("reconnecting", connector, delay_s=left, reason=reason)
        await trio.sleep(min(1.0, left) if connector.status.tty else left)


def _refused(connector: Connector, why: str) -> Exception:
    from lynkr.tunnel._connector import GatewayRefusedError

    return GatewayRefusedError(f"the gateway at {connector.settings.url} refused user "
                               f"{connector.settings.user_id!r}: {why}")


def _ws_url(connector: Connector) -> str:
    base = connector.settings.url
    scheme = "wss" if base.startswith("https") else "ws"
    return (f"{scheme}{base[base.index(':'):]}/api/mcp/ws/"
            f"{quote(connector.settings.user_id, safe='')}")


# -- WebSocket ---------------------------------------------------------------------
async def _websocket_link(connector: Connector) -> None:
    """One WebSocket, from the TCP connect to the close.

    The TCP (or TLS) stream is opened and closed here, around trio-websocket's
    `wrap_client_stream`: trio-websocket 0.12's own `open_websocket_url` leaves the
    socket open when the gateway closes the connection first or refuses the upgrade.
    """
    parts = urlsplit(_ws_url(connector))
    tls = parts.scheme == "wss"
    host, port = parts.hostname or "127.0.0.1", parts.port or (443 if tls else 80)
    host_header = host if port in (80, 443) else f"{host}:{port}"
    headers = [(b"x-api-key", connector.settings.api_key.encode())]
    with trio.fail_after(_OPEN_TIMEOUT):
        stream: trio.SocketStream | trio.SSLStream[trio.SocketStream] = (
            await trio.open_ssl_over_tcp_stream(host, port, https_compatible=True) if tls
            else await trio.open_tcp_stream(host, port))
    try:
        async with trio.open_nursery() as nursery:
            with trio.fail_after(_OPEN_TIMEOUT):
                ws = await trio_websocket.wrap_client_stream(
                    nursery, stream, host_header, f"{parts.path}", extra_headers=headers,
                    max_message_size=_MAX_MESSAGE, message_queue_size=16)
            try:
                await _serve_websocket(connector, ws)
            finally:
                # A link that failed says goodbye; a cancelled one (the connector is
                # stopping) cannot, as trio-websocket's reader is cancelled with it.
                if trio.current_effective_deadline() != -math.inf:
                    with trio.move_on_after(_CLOSE_TIMEOUT) as closing:
                        closing.shield = True
                        await ws.aclose()
                nursery.cancel_scope.cancel()
    except* trio_websocket.ConnectionRejected as group:  # raised by trio-websocket's reader
        raise _rejection(connector, _leaf(group)) from None
    finally:
        with trio.CancelScope(shield=True):
            await stream.aclose()


def _rejection(connector: Connector, exc: BaseException) -> Exception:
    """The refused upgrade as the connector's own error (see `maintain_link`)."""
    assert isinstance(exc, trio_websocket.ConnectionRejected)
    body = (exc.body or b"")[:200].decode(errors="replace")
    if exc.status_code in _AUTH_STATUSES:
        return _refused(connector, f"HTTP {exc.status_code} {body}".strip())
    return _UpgradeRefusedError(f"WebSocket upgrade refused: HTTP {exc.status_code} {body}")


async def _serve_websocket(connector: Connector, ws: trio_websocket.WebSocketConnection,
                           ) -> None:
    lock = trio.Lock()
    heard = trio.current_time()

    async def send(message: dict[str, Any]) -> None:
        async with lock:
            await ws.send_message(encode(message))

    async def read() -> None:
        nonlocal heard
        while True:
            try:
                text = await ws.get_message()
            except trio_websocket.ConnectionClosed as exc:
                reason = exc.reason
                if reason is not None and reason.code == _POLICY_VIOLATION:
                    raise _refused(connector, reason.reason or "policy violation") from exc
                if reason is not None and reason.code == _WS_DISABLED and \
                        connector.settings.transport == "auto":
                    why = reason.reason or "websocket disabled"
                    raise _UpgradeRefusedError(f"WebSocket closed: {why}") from exc
                raise
            heard = trio.current_time()
            try:
                message = decode(text)
            except ProtocolError as exc:
                log.warning("connector_message_skipped", error=str(exc))
                continue
            if isinstance(message, CallMessage):
                connector.accept(message)
            elif isinstance(message, dict):
                kind = message["type"]
                if kind == "ping":
                    await send({"type": "pong", "ts": message.get("ts", time.time())})
                elif kind == "cancel" and isinstance(message.get("call_id"), str):
                    connector.cancel(message["call_id"])
                elif kind == "registered":
                    _registered(connector, "connected")

    async def heartbeat() -> None:
        every = connector.settings.ping_interval
        while True:
            await trio.sleep(every)
            if trio.current_time() - heard > _SILENCE_LIMIT * every:
                raise _LinkLostError("heartbeat lost: the gateway went silent")
            await send({"type": "ping", "ts": time.time()})

    async def send_results() -> None:
        while True:
            await connector.outbox.wait_nonempty()
            result = connector.outbox.pending[0]
            await send(result.as_json())
            connector.outbox.remove([result])

    async def reregister() -> None:
        while True:
            await connector.wait_tools_changed()
            await send(connector.register_message().as_json())

    connector.tools_changed = trio.Event()  # this register carries the current tools
    await send(connector.register_message().as_json())
    async with trio.open_nursery() as nursery:
        for loop in (heartbeat, send_results, reregister):
            nursery.start_soon(loop)
        await read()


def _registered(connector: Connector, state: str) -> None:
    if not connector.registered_once:
        log.info("connector_registered", connector_id=connector.connector_id,
                 link=state, tools=len(connector.register_message().tools))
    connector.registered_once = True
    connector.status.show(state, connector)


# -- polling -----------------------------------------------------------------------
async def _post(connector: Connector, client: httpx.AsyncClient, path: str,
                body: dict[str, Any]) -> Any:
    response = await client.post(path, content=encode(body),
                                 headers={"content-type": "application/json"})
    if response.status_code in _AUTH_STATUSES:
        raise _refused(connector, f"HTTP {response.status_code} {response.text[:200]}")
    if response.status_code >= 400:
        raise _LinkLostError(f"{path}: HTTP {response.status_code} {response.text[:200]}")
    try:
        return response.json()
    except ValueError as exc:
        raise _LinkLostError(f"{path}: the answer is not JSON") from exc


async def _polling_link(connector: Connector) -> None:
    timeout = httpx.Timeout(_OPEN_TIMEOUT, read=POLL_WAIT_S + _OPEN_TIMEOUT)
    async with httpx.AsyncClient(base_url=connector.settings.url, timeout=timeout,
                                 headers={"x-api-key": connector.settings.api_key}) as client:

        async def register() -> None:
            connector.tools_changed = trio.Event()
            answer = await _post(connector, client, "/api/mcp/register",
                                 connector.register_message().as_json())
            decode(answer)  # a `registered` message, or ProtocolError
            _registered(connector, "polling")

        async def poll() -> None:
            while True:
                answer = await _post(connector, client, "/api/mcp/poll",
                                     {"connector_id": connector.connector_id})
                calls = answer.get("calls") if isinstance(answer, dict) else None
                if not isinstance(calls, list):
                    raise ProtocolError("poll: the answer has no calls list")
                for raw in calls:
                    message = decode(raw)
                    if isinstance(message, CallMessage):
                        connector.accept(message)
                    elif isinstance(message, dict) and message["type"] == "cancel":
                        connector.cancel(str(message.get("call_id")))

        async def submit() -> None:
            while True:
                await connector.outbox.wait_nonempty()
                batch = list(connector.outbox.pending)
                connector.outbox.in_flight += len(batch)
                try:
                    await _post(connector, client, "/api/mcp/submit",
                                {"results": [r.as_json() for r in batch]})
                finally:
                    connector.outbox.in_flight -= len(batch)
                for result in batch:
                    connector.outbox.remove([result])

        async def reregister() -> None:
            while True:
                await connector.wait_tools_changed()
                await register()

        await register()
        async with trio.open_nursery() as nursery:
            for loop in (poll, submit, reregister):
                nursery.start_soon(loop)
