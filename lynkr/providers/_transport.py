"""The HTTP/1.1 transport under each provider's pooled `httpx.AsyncClient`: h11 on trio.

Why not httpcore's pool: under load it costs more than the rest of a turn. Every request
start and every response close runs its pool assignment over *all* open connections,
and each idle one it passes is probed with a `poll` system call (`has_expired`); add
its per-request locks, cancellation shields and nested stream wrappers, and at 32
concurrent turns the gateway spent ~1.5 ms of CPU per request in httpcore alone
(`tools/bench_proxy.py`, json c=32: 3.8-4.1 ms per request over httpcore, 2.4-2.6 ms over
this transport; docs/benchmark-history.md). This module does the same job with the same library
that parses HTTP for httpcore and hypercorn (h11), in a few steps per request.

What it does, and promises:

* **A pool per transport**, connections keyed by origin (scheme, host, port). At most
  `max_connections` are open (busy and idle together); a request beyond that waits, up
  to the request's pool timeout (`httpx.PoolTimeout`), and an idle connection to
  another origin is closed to make room. Each request that waits is logged
  (`upstream_pool_full`) and counted (`statistics().waited`, in `/health`). At most
  `max_keepalive` stay idle, each for at most `keepalive_expiry` seconds.
* **Reuse is last-in first-out and checked**: an idle connection whose socket is
  readable was closed by the server (or sent bytes nobody asked for) and is dropped.
  A request sent on a reused connection that the server closed before any byte of a
  response came back (the keep-alive race) fails with `StaleConnectionError` (an
  `httpx.RemoteProtocolError`): the transport never sends a request twice itself, so
  every resend is the orchestrator's counted, logged retry (`lynkr/orchestrator/_call`).
* **h11 parses the heads; `BodyDecoder` (`_body`) the bodies**: h11 costs ~20 µs per
  chunk of a chunked body, and an SSE answer is one chunk per event; each step of a
  body returns all the payload one read delivered.
* **Bodies stay unread**: the response comes back with its body as a stream. The
  connection returns to the pool when the body was read to its end, and is closed when
  the body is abandoned, the task is cancelled, an error happens, either side asked
  for `Connection: close`, the answer was HTTP/1.0 or delimited by the end of the
  connection, or the server sent bytes after the body.
* **Timeouts** come from the request's `timeout` extension, as httpx sets it: connect
  (TCP and TLS handshake), write (each send), read (each receive), pool (the wait).
* **Errors are httpx's**: `ConnectError`/`ConnectTimeout`, `WriteError`/`WriteTimeout`,
  `ReadError`/`ReadTimeout`, `RemoteProtocolError`, `LocalProtocolError`, `PoolTimeout`,
  `UnsupportedProtocol`; the orchestrator maps those to Lynkr's errors.

HTTP/2, Unix sockets and local addresses are not supported (`_pool.pooled_client` builds
the client around this transport, so none of them can be asked for; when the environment
names a proxy, that client is httpx's own instead).

Everything here runs on one trio thread (the gateway's); the pool's bookkeeping
happens between awaits, so it needs no lock.
"""

from __future__ import annotations

import math
import ssl
from dataclasses import dataclass

import h11
import httpx
import structlog
import trio

from lynkr.providers._body import BodyDecoder, Framing, framing_of
from lynkr.providers._response import ResponseBody, says_close

__all__ = ["H11Transport", "StaleConnectionError", "TransportStatistics"]

log = structlog.get_logger()

Origin = tuple[bytes, bytes, int]  # scheme, host, port
_READ_SIZE = 65536
_MAX_HEAD = 100 * 1024  # bytes of response head h11 may buffer (httpcore's limit)
_DEFAULT_PORTS = {b"http": 80, b"https": 443}
_TIMEOUT_KEYS = ("connect", "read", "write", "pool")
# What a send or receive raises when the peer or the network failed (a TLS error
# arrives as BrokenResourceError; Closed: the connection was dropped meanwhile).
_IO_ERRORS = (OSError, trio.BrokenResourceError, trio.ClosedResourceError)


@dataclass(frozen=True, slots=True)
class TransportStatistics:
    """A snapshot of a transport's pool."""

    open: int  # connections open, busy or idle
    idle: int  # of those, idle in the pool
    waiting: int  # requests waiting for a connection
    opened: int  # connections opened since the transport was made
    reused: int  # requests sent on a connection that served one before
    waited: int = 0  # requests that had to wait for a connection (each logged)


class StaleConnectionError(httpx.RemoteProtocolError):
    """A reused connection turned out closed before any byte of the response came: the
    server never saw the request, or dropped it unanswered, so it may be sent again."""


_STALE = "the server closed a reused connection before answering"


class PooledConnection:
    """One HTTP/1.1 connection: a trio stream, its h11 state and its pool bookkeeping."""

    __slots__ = ("expires_at", "h11", "origin", "reused", "socket", "stream")

    def __init__(self, origin: Origin, stream: trio.abc.Stream, sock: trio.socket.SocketType,
                 ) -> None:
        self.origin = origin
        self.stream = stream
        self.socket = sock  # the TCP socket under `stream` (under TLS too)
        self.h11 = _new_h11()
        self.expires_at = math.inf
        self.reused = False

    def is_reusable(self, now: float) -> bool:
        """Idle, not expired, and not closed by the peer (a readable idle socket)."""
        return now < self.expires_at and not self.socket.is_readable()

    def close(self) -> None:
        """Close the socket at once (no TLS close_notify: the connection is abandoned)."""
        self.socket.close()


class H11Transport(httpx.AsyncBaseTransport):
    """A pooled HTTP/1.1 transport for `httpx.AsyncClient` (module doc).

    Args:
        ssl_context: the TLS settings for `https` origins (httpx's, for the client's
            `verify` and `cert`).
        max_connections: open connections at most, busy and idle.
        max_keepalive: idle connections kept at most.
        keepalive_expiry: seconds an idle connection is kept (None: no limit).
    """

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None,
                 max_connections: int | None = 100, max_keepalive: int | None = 20,
                 keepalive_expiry: float | None = 5.0) -> None:
        self._ssl_context = ssl_context
        if ssl_context is not None:
            ssl_context.set_alpn_protocols(["http/1.1"])
        self._max_connections = math.inf if max_connections is None else max_connections
        keep = self._max_connections if max_keepalive is None else max_keepalive
        self._max_keepalive = min(keep, self._max_connections)
        self._keepalive_expiry = math.inf if keepalive_expiry is None else keepalive_expiry
        self._idle: dict[Origin, list[PooledConnection]] = {}
        self._idle_count = 0
        self._open = 0
        self._opened = 0
        self._reused = 0
        self._waited = 0
        self._waiters = trio.lowlevel.ParkingLot()
        self._closed = False

    def statistics(self) -> TransportStatistics:
        """Connections open, idle and waited for, and the totals so far."""
        return TransportStatistics(self._open, self._idle_count,
                                   self._waiters.statistics().tasks_waiting, self._opened,
                                   self._reused, self._waited)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` and return the response with its body unread.

        Raises:
            httpx.TransportError: one of the classes in the module doc.
        """
        if self._closed:
            raise RuntimeError("the transport is closed")
        origin = _origin(request.url)
        timeouts = request.extensions.get("timeout") or {}
        connect, read, write, pool = (_seconds(timeouts.get(k)) for k in _TIMEOUT_KEYS)
        try:
            body: bytes | None = request.content
        except httpx.RequestNotRead:
            body = None  # a streamed body: sent as it comes, and never twice
        connection = await self._acquire(origin, pool, connect)
        return await self._exchange(connection, request, body, write, read)

    async def aclose(self) -> None:
        """Close every idle connection; busy ones close when their response ends."""
        self._closed = True
        for stack in self._idle.values():
            for connection in stack:
                self._drop(connection)
        self._idle.clear()
        self._idle_count = 0

    # -- the pool ------------------------------------------------------------------------
    async def _acquire(self, origin: Origin, pool_timeout: float,
                       connect_timeout: float) -> PooledConnection:
        """An idle connection to `origin` that is still good, else a new one."""
        deadline = trio.current_time() + pool_timeout
        waited = False
        while True:
            stack = self._idle.get(origin)
            if stack:
                now = trio.current_time()
                while stack:
                    connection = stack.pop()
                    self._idle_count -= 1
                    if connection.is_reusable(now):
                        connection.reused = True
                        self._reused += 1
                        return connection
                    self._drop(connection)
            if self._open < self._max_connections or self._evict_other_than(origin):
                break
            if not waited:  # the pool is full: say so once per request (UPSTREAM_POOL_SIZE)
                waited = True
                self._waited += 1
                log.warning("upstream_pool_full", host=origin[1].decode("ascii", "replace"),
                            open=self._open, limit=self._max_connections,
                            waiting=self._waiters.statistics().tasks_waiting + 1,
                            waited_total=self._waited)
            with trio.move_on_at(deadline):
                await self._waiters.park()
                continue
            raise httpx.PoolTimeout("timed out waiting for a connection from the pool")
        self._open += 1
        self._opened += 1
        opened: PooledConnection | None = None
        try:
            opened = await self._connect(origin, connect_timeout)
            return opened
        finally:
            if opened is None:  # failed or cancelled: give the slot back
                self._open -= 1
                self._waiters.unpark()

    def _evict_other_than(self, origin: Origin) -> bool:
        """Close one idle connection to another origin, to make room; False if none."""
        for other, stack in self._idle.items():
            if other != origin and stack:
                self._idle_count -= 1
                self._drop(stack.pop(0))  # the one idle the longest
                return True
        return False

    def _release(self, connection: PooledConnection, *, reusable: bool) -> None:
        """A response ended: keep the connection idle if it may serve another."""
        if reusable and not self._closed and self._idle_count < self._max_keepalive:
            connection.h11 = _new_h11()  # the old one stopped at the head
            connection.expires_at = trio.current_time() + self._keepalive_expiry
            self._idle.setdefault(connection.origin, []).append(connection)
            self._idle_count += 1
            self._waiters.unpark()
            return
        self._drop(connection)

    def _drop(self, connection: PooledConnection) -> None:
        """Close a connection and give its slot to a waiting request."""
        connection.close()
        self._open -= 1
        self._waiters.unpark()

    # -- one connection --------------------------------------------------------------------
    async def _connect(self, origin: Origin, within: float) -> PooledConnection:
        scheme, host, port = origin
        hostname = host.decode("ascii")
        tcp: trio.SocketStream | None = None
        connected = False
        try:
            with trio.move_on_after(within):
                tcp = await trio.open_tcp_stream(hostname, port)
                stream: trio.abc.Stream = tcp
                if scheme == b"https":
                    tls = trio.SSLStream(tcp, self._ssl_context or _default_ssl_context(),
                                         server_hostname=hostname, https_compatible=True)
                    await tls.do_handshake()
                    stream = tls
                connected = True
                return PooledConnection(origin, stream, tcp.socket)
        except (OSError, trio.BrokenResourceError, ssl.SSLError) as exc:
            raise httpx.ConnectError(f"cannot connect to {hostname}:{port}: {exc}") from exc
        finally:
            if not connected and tcp is not None:
                tcp.socket.close()
        raise httpx.ConnectTimeout(f"timed out connecting to {hostname}:{port}")

    async def _exchange(self, connection: PooledConnection, request: httpx.Request,
                        body: bytes | None, write: float, read: float) -> httpx.Response:
        """Send the request and read the response head; the body stays on the wire."""
        done = False
        try:
            state = connection.h11
            try:
                data = state.send(h11.Request(method=request.method, target=request.url.raw_path,
                                              headers=request.headers.raw))
                if body is not None:
                    data += (state.send(h11.Data(data=body)) if body else b"") + state.send(
                        h11.EndOfMessage())
            except h11.LocalProtocolError as exc:
                raise httpx.LocalProtocolError(str(exc)) from exc
            await self._send(connection, data, write)
            if body is None:
                await self._send_stream(connection, request, write)
            head = await self._receive_head(connection, read)
            headers = list(head.headers)
            framing, length = framing_of(request.method, head.status_code, headers)
            reusable = (head.http_version == b"1.1" and framing is not Framing.CLOSE
                        and not says_close(headers) and not says_close(request.headers.raw))
            decoder = BodyDecoder(framing, length)
            first = decoder.feed(state.trailing_data[0])  # what came with the head
            response = httpx.Response(
                head.status_code, headers=head.headers.raw_items(),
                stream=ResponseBody(self, connection, read, decoder, reusable, first),
                extensions={"http_version": b"HTTP/" + head.http_version,
                            "reason_phrase": head.reason})
            done = True
            return response
        finally:
            if not done:
                self._drop(connection)

    async def _send_stream(self, connection: PooledConnection, request: httpx.Request,
                           write: float) -> None:
        stream = request.stream
        if not isinstance(stream, httpx.AsyncByteStream):
            raise httpx.LocalProtocolError("a sync request body on an async transport")
        state = connection.h11
        try:
            async for chunk in stream:
                if chunk:
                    await self._send(connection, state.send(h11.Data(data=chunk)), write)
            await self._send(connection, state.send(h11.EndOfMessage()), write)
        except h11.LocalProtocolError as exc:
            raise httpx.LocalProtocolError(str(exc)) from exc

    async def _send(self, connection: PooledConnection, data: bytes, within: float) -> None:
        try:
            with trio.move_on_after(within) as scope:
                await connection.stream.send_all(data)
        except _IO_ERRORS as exc:
            if connection.reused and connection.h11.their_state is h11.SEND_RESPONSE:
                raise StaleConnectionError(_STALE) from exc
            raise httpx.WriteError(f"sending the request failed: {exc}") from exc
        if scope.cancelled_caught:
            raise httpx.WriteTimeout("timed out sending the request")

    async def _receive_head(self, connection: PooledConnection, read: float) -> h11.Response:
        state = connection.h11
        first = True
        while True:
            try:
                event = state.next_event()
            except h11.RemoteProtocolError as exc:
                raise httpx.RemoteProtocolError(str(exc)) from exc
            if event is h11.NEED_DATA:
                state.receive_data(await self.receive(connection, read, stale_if_empty=first))
                first = False
            elif type(event) is h11.Response:
                return event
            elif type(event) is not h11.InformationalResponse:  # 1xx: skipped, as httpcore
                raise httpx.RemoteProtocolError(f"unexpected {type(event).__name__}")

    async def receive(self, connection: PooledConnection, within: float, *,
                      stale_if_empty: bool = False) -> bytes:
        """The next bytes from `connection` (b"" at its end; `ResponseBody` calls it too)."""
        try:
            with trio.move_on_after(within) as scope:
                data = await connection.stream.receive_some(_READ_SIZE)
        except _IO_ERRORS as exc:
            if stale_if_empty and connection.reused:
                raise StaleConnectionError(_STALE) from exc
            raise httpx.ReadError(f"reading the response failed: {exc}") from exc
        if scope.cancelled_caught:
            raise httpx.ReadTimeout("timed out reading the response")
        if not data and stale_if_empty and connection.reused:
            raise StaleConnectionError(_STALE)
        return data  # type: ignore[return-value]  # a SocketStream gives bytes


def _origin(url: httpx.URL) -> Origin:
    scheme = url.raw_scheme
    port = _DEFAULT_PORTS.get(scheme)
    if port is None:
        raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}")
    if not url.raw_host:
        raise httpx.UnsupportedProtocol(f"no host in {url}")
    return scheme, url.raw_host, url.port or port


def _new_h11() -> h11.Connection:
    """A client-side h11 state for one request's head (heads up to 100 KiB, as httpcore)."""
    return h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEAD)


def _seconds(value: float | None) -> float:
    return math.inf if value is None else value


_SSL: list[ssl.SSLContext] = []


def _default_ssl_context() -> ssl.SSLContext:
    if not _SSL:
        context = httpx.create_ssl_context()
        context.set_alpn_protocols(["http/1.1"])
        _SSL.append(context)
    return _SSL[0]
