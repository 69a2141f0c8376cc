"""`H11Transport`: pooling, reuse, the keep-alive race, timeouts, TLS, over real sockets."""

from __future__ import annotations

import datetime
import functools
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import h11
import httpx
import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lynkr.providers import (
    H11Transport,
    StaleConnectionError,
    TransportStatistics,
    _pool,
    pool_statistics,
    pooled_client,
)

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
# What the scripted server does with the n-th request it read (n counts from 1 over all
# connections; `k` from 1 on its connection): bytes to send, or None to close instead.
Script = Callable[[int, int, h11.Request, bytes], Awaitable[bytes | None]]


async def _ok(n: int, k: int, request: h11.Request, body: bytes) -> bytes | None:
    return OK


def answering(data: bytes) -> Script:
    """A script that answers every request with `data`."""
    async def script(n: int, k: int, request: h11.Request, body: bytes) -> bytes | None:
        return data
    return script


async def _never(n: int, k: int, request: h11.Request, body: bytes) -> bytes | None:
    await trio.sleep_forever()
    raise AssertionError


class Server:
    """A loopback HTTP/1.1 server that answers each request as its script says."""

    def __init__(self, script: Script = _ok) -> None:
        self.script = script
        self.connections = 0
        self.closed = 0  # connections the client closed (EOF seen)
        self.requests: list[tuple[h11.Request, bytes]] = []
        self.port = 0

    async def handle(self, stream: trio.abc.Stream) -> None:
        self.connections += 1
        parser = h11.Connection(h11.SERVER)
        k = 0
        try:
            while True:
                request, body = await self._read(stream, parser)
                if request is None:
                    self.closed += 1
                    return
                k += 1
                self.requests.append((request, body))
                answer = await self.script(len(self.requests), k, request, body)
                if answer is None:
                    return
                await stream.send_all(answer)
                if b"connection: close" in answer.lower():
                    return
                parser = h11.Connection(h11.SERVER)  # a fresh parser: scripts write raw bytes
        except (trio.BrokenResourceError, h11.RemoteProtocolError):
            self.closed += 1
        finally:
            await trio.aclose_forcefully(stream)

    async def _read(self, stream: trio.abc.Stream, parser: h11.Connection,
                    ) -> tuple[h11.Request | None, bytes]:
        request, body = None, b""
        while True:
            event = parser.next_event()
            if event is h11.NEED_DATA:
                parser.receive_data(await stream.receive_some(65536))
            elif type(event) is h11.Request:
                request = event
            elif type(event) is h11.Data:
                body += event.data
            elif type(event) is h11.EndOfMessage:
                return request, body
            elif type(event) is h11.ConnectionClosed:
                return None, b""

    def url(self, path: str = "/", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"


async def _serve(nursery: trio.Nursery, server: Server,
                 tls: ssl.SSLContext | None = None) -> Server:
    handler = server.handle
    if tls is not None:
        async def handler(stream: trio.SocketStream) -> None:  # type: ignore[misc]
            wrapped = trio.SSLStream(stream, tls, server_side=True)
            try:
                await wrapped.do_handshake()
            except trio.BrokenResourceError:
                return
            await server.handle(wrapped)
    listeners = await nursery.start(functools.partial(trio.serve_tcp, handler, 0,
                                                      host="127.0.0.1"))
    server.port = listeners[0].socket.getsockname()[1]
    return server


@asynccontextmanager
async def serving(script: Script = _ok, *, tls: ssl.SSLContext | None = None,
                  ) -> AsyncIterator[Server]:
    """A scripted `Server` on loopback for the duration of the block."""
    async with trio.open_nursery() as nursery:
        yield await _serve(nursery, Server(script), tls=tls)
        nursery.cancel_scope.cancel()


async def _get(client: httpx.AsyncClient, url: str, **kwargs: object) -> bytes:
    response = await client.get(url, **kwargs)  # type: ignore[arg-type]
    return response.content


def _client(transport: H11Transport, timeout: float = 5.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=transport, timeout=timeout)


def _stats(transport: H11Transport) -> tuple[int, int, int, int]:
    s = transport.statistics()
    return s.open, s.idle, s.opened, s.reused


async def test_requests_reuse_one_keep_alive_connection():
    """Three requests in a row: one connection, reused twice, idle afterwards."""
    async with serving() as server:
        transport = H11Transport()
        async with _client(transport) as client:
            for _ in range(3):
                assert await _get(client, server.url()) == b"ok"
            assert _stats(transport) == (1, 1, 1, 2)
    assert server.connections == 1


async def test_statistics_is_a_frozen_snapshot():
    """`statistics()` returns a frozen object."""
    stats = H11Transport().statistics()
    assert stats == TransportStatistics(open=0, idle=0, waiting=0, opened=0, reused=0)
    with pytest.raises(AttributeError):
        stats.open = 1  # type: ignore[misc]


async def test_a_request_carries_method_target_headers_and_body():
    """The server sees what the client built: method, path with query, headers, body."""
    async with serving() as server, _client(H11Transport()) as client:
        response = await client.post(server.url("/v1/chat?beta=true"), content=b'{"a":1}',
                                     headers={"x-api-key": "k"})
        assert response.status_code == 200
        assert response.http_version == "HTTP/1.1"
        assert response.reason_phrase == "OK"
    request, body = server.requests[0]
    assert (request.method, request.target) == (b"POST", b"/v1/chat?beta=true")
    headers = dict(request.headers)
    assert headers[b"x-api-key"] == b"k"
    assert headers[b"host"] == f"127.0.0.1:{server.port}".encode()
    assert body == b'{"a":1}'


async def test_a_streamed_request_body_is_sent_chunked():
    """An async-iterable body goes out with chunked framing, whole."""
    async def parts():
        for part in (b"ab", b"", b"cd"):
            yield part

    async with serving() as server, _client(H11Transport()) as client:
        response = await client.post(server.url(), content=parts())
        assert response.content == b"ok"
    request, body = server.requests[0]
    assert dict(request.headers)[b"transfer-encoding"] == b"chunked"
    assert body == b"abcd"


async def test_a_chunked_response_streams_and_then_returns_the_connection():
    """Chunks arrive as they are read; the connection is idle again after the end."""
    async def chunked(n: int, k: int, request: h11.Request, body: bytes) -> bytes:
        return (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                b"3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n")

    async with serving(chunked) as server:
        transport = H11Transport()
        async with _client(transport) as client, client.stream("GET", server.url()) as response:
            assert _stats(transport)[:2] == (1, 0)  # busy while the body is unread
            assert b"".join([part async for part in response.aiter_raw()]) == b"onetwo"
            assert _stats(transport)[:2] == (1, 1)


async def test_an_abandoned_body_closes_its_connection():
    """Closing a response before its end closes the connection; the next one is new."""
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n" + b"x" * 1000
    async with serving(answering(answer)) as server:
        transport = H11Transport()
        response = await transport.handle_async_request(httpx.Request("GET", server.url()))
        assert await response.stream.__aiter__().__anext__() == b"x" * 1000  # type: ignore[union-attr]
        await response.aclose()
        assert _stats(transport)[:2] == (0, 0)
        with pytest.raises(httpx.StreamClosed):
            await response.stream.__aiter__().__anext__()  # type: ignore[union-attr]
        async with _client(transport) as client, client.stream("GET", server.url()):
            pass
        assert transport.statistics().opened == 2
        await trio.sleep(0.05)
    assert server.closed == 2


async def test_connection_close_from_the_server_is_honoured():
    """A response with `Connection: close` is not reused."""
    answer = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"
    async with serving(answering(answer)) as server:
        transport = H11Transport()
        async with _client(transport) as client:
            for _ in range(2):
                assert await _get(client, server.url()) == b"ok"
            assert _stats(transport) == (0, 0, 2, 0)


async def test_an_idle_connection_the_server_closed_is_not_reused():
    """The server hangs up after answering: the next request quietly opens a new one."""
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, _answer_one, 0,
                                                          host="127.0.0.1"))
        url = f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}/"
        transport = H11Transport()
        async with _client(transport) as client:
            assert await _get(client, url) == b"ok"
            await trio.sleep(0.05)  # the FIN arrives
            assert await _get(client, url) == b"ok"
            assert _stats(transport)[2:] == (2, 0)
        nursery.cancel_scope.cancel()


async def _answer_one(stream: trio.abc.Stream) -> None:
    """Read one request, answer it, close the connection (no `Connection: close`)."""
    parser = h11.Connection(h11.SERVER)
    while type(event := parser.next_event()) is not h11.EndOfMessage:
        if event is h11.NEED_DATA:
            parser.receive_data(await stream.receive_some(65536))
    await stream.send_all(OK)
    await trio.aclose_forcefully(stream)


async def test_the_keep_alive_race_is_an_error_the_transport_never_resends():
    """A reused connection closed with no response byte: `StaleConnectionError`, and the
    request was sent once (resending is the orchestrator's counted retry)."""
    async def drop_second(n: int, k: int, request: h11.Request, body: bytes) -> bytes | None:
        return None if k == 2 else OK

    async with serving(drop_second) as server:
        transport = H11Transport()
        async with _client(transport) as client:
            assert await _get(client, server.url()) == b"ok"
            with pytest.raises(StaleConnectionError):
                await client.post(server.url(), content=b"again")
            assert await _get(client, server.url()) == b"ok"  # a new connection serves
    assert [body for _, body in server.requests] == [b"", b"again", b""]


async def test_a_new_connection_closed_without_a_response_is_an_error():
    """No retry on a fresh connection: `RemoteProtocolError`, and nothing left open."""
    async def drop(n: int, k: int, request: h11.Request, body: bytes) -> bytes | None:
        return None

    async with serving(drop) as server:
        transport = H11Transport()
        async with _client(transport) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get(server.url())
            assert _stats(transport)[:2] == (0, 0)
    assert len(server.requests) == 1


async def test_a_streamed_body_is_never_sent_twice():
    """The keep-alive race with a streamed body: an error, not a second send."""
    async def drop_second(n: int, k: int, request: h11.Request, body: bytes) -> bytes | None:
        return None if k == 2 else OK

    async def parts():
        yield b"once"

    async with serving(drop_second) as server, _client(H11Transport()) as client:
        await client.get(server.url())
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(server.url(), content=parts())
    assert len(server.requests) == 2


async def test_a_body_cut_by_the_server_is_a_remote_protocol_error():
    """Fewer bytes than `content-length`, then EOF: `RemoteProtocolError`, connection gone."""
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\nconnection: close\r\n\r\nabc"
    async with serving(answering(answer)) as server:
        transport = H11Transport()
        async with _client(transport) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get(server.url())
            assert _stats(transport)[:2] == (0, 0)


async def test_garbage_from_the_server_is_a_remote_protocol_error():
    """A response that is not HTTP: `RemoteProtocolError`."""
    answer = b"SSH-2.0-OpenSSH\r\n\r\n"
    async with serving(answering(answer)) as server, _client(H11Transport()) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(server.url())


async def test_informational_responses_are_skipped():
    """A `100 Continue` before the response is passed over."""
    answer = b"HTTP/1.1 100 Continue\r\n\r\n" + OK
    async with serving(answering(answer)) as server, _client(H11Transport()) as client:
        assert await _get(client, server.url()) == b"ok"


async def test_a_silent_server_is_a_read_timeout():
    """No answer within the read timeout: `ReadTimeout`, the connection closed."""
    async with serving(_never) as server:
        transport = H11Transport()
        async with _client(transport, timeout=0.2) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get(server.url())
            assert _stats(transport)[:2] == (0, 0)


async def test_a_stalled_body_is_a_read_timeout():
    """The head arrives, the body stalls: `ReadTimeout` while reading it."""
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nab"
    async with (serving(answering(answer)) as server,
                _client(H11Transport(), timeout=0.2) as client,
                client.stream("GET", server.url()) as response):
        with pytest.raises(httpx.ReadTimeout):
            await response.aread()


async def test_a_refused_connection_is_a_connect_error():
    """Nobody listening: `ConnectError`, and the slot is free again."""
    with trio.socket.socket() as probe:
        await probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = H11Transport(max_connections=1)
    async with _client(transport) as client:
        for _ in range(2):
            with pytest.raises(httpx.ConnectError):
                await client.get(f"http://127.0.0.1:{port}/")
    assert transport.statistics().open == 0


async def test_a_stuck_tls_handshake_is_a_connect_timeout(tmp_path: Path):
    """TCP connects but TLS never answers: `ConnectTimeout` within the connect timeout."""
    async def mute(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, mute, 0,
                                                          host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        transport = H11Transport()
        async with httpx.AsyncClient(transport=transport,
                                     timeout=httpx.Timeout(5.0, connect=0.2)) as client:
            with pytest.raises(httpx.ConnectTimeout):
                await client.get(f"https://127.0.0.1:{port}/")
        assert transport.statistics().open == 0
        nursery.cancel_scope.cancel()


async def test_an_unsupported_scheme_is_refused():
    """Only http and https: anything else is `UnsupportedProtocol`."""
    async with _client(H11Transport()) as client:
        with pytest.raises(httpx.UnsupportedProtocol):
            await client.get("ftp://127.0.0.1/")


async def test_requests_beyond_max_connections_wait_for_a_free_one():
    """With one connection allowed, a second request waits and then reuses it."""
    release = trio.Event()

    async def slow_first(n: int, k: int, request: h11.Request, body: bytes) -> bytes | None:
        if n == 1:
            await release.wait()
        return OK

    async with trio.open_nursery() as nursery:
        server = await _serve(nursery, Server(slow_first))
        transport = H11Transport(max_connections=1)
        async with _client(transport) as client:
            answers: list[bytes] = []

            async def fetch() -> None:
                answers.append(await _get(client, server.url()))

            async with trio.open_nursery() as fetches:
                fetches.start_soon(fetch)
                fetches.start_soon(fetch)
                await trio.sleep(0.1)
                assert transport.statistics().waiting == 1
                release.set()
            assert answers == [b"ok", b"ok"]
            assert _stats(transport)[2:] == (1, 1)
        nursery.cancel_scope.cancel()
    assert server.connections == 1


async def test_waiting_longer_than_the_pool_timeout_is_a_pool_timeout():
    """The only connection stays busy: `PoolTimeout` for the one waiting."""
    async with trio.open_nursery() as nursery:
        server = await _serve(nursery, Server(_never))
        transport = H11Transport(max_connections=1)
        timeout = httpx.Timeout(5.0, pool=0.2)
        async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
            nursery.start_soon(functools.partial(client.get, server.url()))
            await trio.sleep(0.05)
            with pytest.raises(httpx.PoolTimeout):
                await client.get(server.url())
            assert transport.statistics().waiting == 0
        nursery.cancel_scope.cancel()


async def test_an_idle_connection_to_another_origin_makes_room():
    """At the limit, an idle connection to another origin is closed for a new origin."""
    async with trio.open_nursery() as nursery:
        first = await _serve(nursery, Server())
        second = await _serve(nursery, Server())
        transport = H11Transport(max_connections=1)
        async with _client(transport) as client:
            assert await _get(client, first.url()) == b"ok"
            assert await _get(client, second.url()) == b"ok"
            assert _stats(transport) == (1, 1, 2, 0)
        await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    assert first.closed == 1


async def test_idle_connections_expire():
    """An idle connection older than `keepalive_expiry` is not reused."""
    async with serving() as server:
        transport = H11Transport(keepalive_expiry=0.05)
        async with _client(transport) as client:
            await _get(client, server.url())
            await trio.sleep(0.1)
            await _get(client, server.url())
            assert _stats(transport)[2:] == (2, 0)


async def test_no_keepalive_means_no_reuse():
    """`max_keepalive=0`: every request on a new connection, none left open."""
    async with serving() as server:
        transport = H11Transport(max_keepalive=0)
        async with _client(transport) as client:
            for _ in range(2):
                await _get(client, server.url())
            assert _stats(transport) == (0, 0, 2, 0)


async def test_cancelling_a_request_closes_its_connection():
    """A request cancelled while waiting for the answer leaves nothing open."""
    async with serving(_never) as server:
        transport = H11Transport()
        async with _client(transport) as client:
            with trio.move_on_after(0.1):
                await client.get(server.url())
            assert _stats(transport)[:2] == (0, 0)


async def test_cancelling_while_reading_a_body_closes_its_connection():
    """A body cancelled half read: the connection is closed, not pooled."""
    async with serving(answering(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nab")) as server:
        transport = H11Transport()
        async with _client(transport) as client:
            async with client.stream("GET", server.url()) as response:
                with trio.move_on_after(0.1):
                    await response.aread()
            assert _stats(transport)[:2] == (0, 0)


async def test_aclose_closes_idle_connections_and_refuses_new_requests():
    """After `aclose`, idle connections are closed and a request is an error."""
    async with serving() as server:
        transport = H11Transport()
        client = _client(transport)
        await _get(client, server.url())
        await transport.aclose()
        assert _stats(transport)[:2] == (0, 0)
        with pytest.raises(RuntimeError, match="closed"):
            await transport.handle_async_request(httpx.Request("GET", server.url()))
        await trio.sleep(0.05)
    assert server.closed == 1


# -- TLS ---------------------------------------------------------------------------------
def _certificates(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context for 127.0.0.1 signed by a fresh CA, and the CA's PEM file."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lynkr test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(1)
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain = tmp_path / "server.pem"
    chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(chain)
    return server, ca_file


async def test_https_through_a_trusted_certificate(tmp_path: Path):
    """TLS to a server whose CA the client trusts; keep-alive works over TLS too."""
    server_context, ca_file = _certificates(tmp_path)
    async with serving(tls=server_context) as server:
        client = pooled_client(verify=ssl.create_default_context(cafile=str(ca_file)))
        async with client:
            for _ in range(2):
                assert await _get(client, server.url(scheme="https")) == b"ok"
            stats = pool_statistics(client)
            assert stats is not None
            assert stats.reused == 1


async def test_https_to_an_untrusted_certificate_is_a_connect_error(tmp_path: Path):
    """The default trust store does not know the test CA: `ConnectError`."""
    server_context, _ = _certificates(tmp_path)
    async with (serving(tls=server_context) as server,
                pooled_client() as client):
        with pytest.raises(httpx.ConnectError):
            await client.get(server.url(scheme="https"))
    assert server.requests == []


# -- fitting it to a client ----------------------------------------------------------------
def test_pooled_client_gives_its_limits_to_the_transport():
    """Limits and keep-alive expiry are passed to `H11Transport` explicitly."""
    limits = httpx.Limits(max_connections=7, max_keepalive_connections=3, keepalive_expiry=9)
    transport = _pool._POOLED[pooled_client(limits=limits)]
    assert (transport._max_connections, transport._max_keepalive,
            transport._keepalive_expiry) == (7, 3, 9)


def test_pool_statistics_read_our_transport_and_nothing_else():
    """A `pooled_client` has pool statistics; a mock client has none."""
    assert pool_statistics(pooled_client()) == TransportStatistics(
        open=0, idle=0, waiting=0, opened=0, reused=0)
    mocked = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    assert pool_statistics(mocked) is None
    assert pool_statistics(object()) is None


async def test_a_body_without_length_is_read_until_close():
    """No length and no chunking: the body is what comes until the server closes."""
    answer = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of it"
    async with serving(answering(answer)) as server:
        transport = H11Transport()
        async with _client(transport) as client:
            assert await _get(client, server.url()) == b"all of it"
            assert _stats(transport)[:2] == (0, 0)


async def test_bytes_after_a_response_body_keep_the_connection_out_of_the_pool():
    """A server that sends more than the body announced: the connection is not reused."""
    async with serving(answering(OK + b"HTTP/1.1 200 OK\r\n")) as server:
        transport = H11Transport()
        async with _client(transport) as client:
            assert await _get(client, server.url()) == b"ok"
            assert await _get(client, server.url()) == b"ok"
            assert _stats(transport)[2:] == (2, 0)


async def test_an_http_1_0_response_is_not_reused():
    """An HTTP/1.0 answer closes its connection after the body."""
    async with serving(answering(b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok")) as server:
        transport = H11Transport()
        async with _client(transport) as client:
            response = await client.get(server.url())
            assert (response.content, response.http_version) == (b"ok", "HTTP/1.0")
            assert _stats(transport)[:2] == (0, 0)


async def _serve_head_in_pieces(pieces: list[bytes], task_status: trio.TaskStatus[str]
                                = trio.TASK_STATUS_IGNORED) -> None:
    """Answer each connection's first request with `pieces`, 20 ms apart, then hold it."""
    async def handler(stream: trio.SocketStream) -> None:
        parser = h11.Connection(h11.SERVER)
        while type(event := parser.next_event()) is not h11.EndOfMessage:
            if event is h11.NEED_DATA:
                parser.receive_data(await stream.receive_some(65536))
        for piece in pieces:
            await stream.send_all(piece)
            await trio.sleep(0.02)
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, handler, 0,
                                                          host="127.0.0.1"))
        task_status.started(f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}/")


async def test_a_response_head_may_be_large_but_not_endless():
    """A 60 KiB header arriving in pieces is read (as httpcore would); over 100 KiB of
    head still unfinished is a protocol error, not a buffer that grows until a timeout."""
    head = b"HTTP/1.1 200 OK\r\nconnection: close\r\nx-big: " + b"v" * (60 * 1024)
    large = [head[:30_000], head[30_000:], b"\r\ncontent-length: 2\r\n\r\nok"]
    endless = [head[:30_000], head[30_000:], b"v" * 50_000]
    async with trio.open_nursery() as nursery, _client(H11Transport()) as client:
        url = await nursery.start(_serve_head_in_pieces, large)
        assert await _get(client, url) == b"ok"
        url = await nursery.start(_serve_head_in_pieces, endless)
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(url)
        nursery.cancel_scope.cancel()
