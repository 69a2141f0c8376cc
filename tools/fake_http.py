"""A minimal HTTP/1.1 server on trio, just enough for the fake upstream.

The fake upstream is the baseline the proxy benchmark compares Lynkr against, so its
own cost per request must be tiny: a full ASGI server spends a few milliseconds of CPU
per request, this one a fraction of that. It speaks keep-alive HTTP/1.1 with
`content-length` or chunked request bodies, answers with `content-length` or a chunked
stream, and can drop a connection mid-stream on purpose (`Reply.cut`), which is how
the fake upstream simulates a cut stream. It is a test tool, bound to 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

import trio

__all__ = ["Reply", "Request", "serve_http"]

_MAX_HEAD = 64 * 1024
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests",
            500: "Internal Server Error", 503: "Service Unavailable", 529: "Overloaded"}


class _BadRequestError(Exception):
    """The client sent something that is not HTTP/1.1 we understand."""


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed request."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class Reply:
    """A response: a body, or a list of frames sent as a chunked stream."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    frames: list[bytes] | None = None
    frame_delay: float = 0.0
    cut: bool = False  # drop the connection after the frames instead of ending the stream


Handler = Callable[[Request], Awaitable[Reply]]


async def serve_http(
    handler: Handler,
    *,
    port: int = 0,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `handler` on 127.0.0.1:`port` until cancelled; `start()` returns the port."""
    listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
    bound = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(trio.serve_listeners, partial(_connection, handler),
                                    listeners, handler_nursery=nursery))
        task_status.started(bound)


async def _connection(handler: Handler, stream: trio.SocketStream) -> None:
    buf = bytearray()
    try:
        while True:
            head = await _read_head(stream, buf)
            if head is None:
                return
            try:
                request = await _parse(stream, buf, head)
            except _BadRequestError as exc:
                await _write(stream, Reply(400, body=str(exc).encode()), close=True)
                return
            reply = await handler(request)
            close = request.headers.get("connection", "").lower() == "close"
            await _write(stream, reply, close=close)
            if close or reply.cut:
                return
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return
    finally:
        await stream.aclose()


async def _receive(stream: trio.SocketStream, buf: bytearray) -> bool:
    data = await stream.receive_some(65536)
    buf += data
    return bool(data)


async def _read_head(stream: trio.SocketStream, buf: bytearray) -> bytes | None:
    while (end := buf.find(b"\r\n\r\n")) < 0:
        if len(buf) > _MAX_HEAD or not await _receive(stream, buf):
            return None
    head = bytes(buf[:end])
    del buf[:end + 4]
    return head


async def _parse(stream: trio.SocketStream, buf: bytearray, head: bytes) -> Request:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequestError("bad request line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise _BadRequestError("bad header line")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(stream, buf)
    else:
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError as exc:
            raise _BadRequestError("bad content-length") from exc
        body = await _read_exact(stream, buf, length)
    path, _, query = parts[1].partition("?")
    return Request(parts[0].upper(), path, query, headers, body)


async def _read_exact(stream: trio.SocketStream, buf: bytearray, length: int) -> bytes:
    while len(buf) < length:
        if not await _receive(stream, buf):
            raise _BadRequestError("body shorter than content-length")
    body = bytes(buf[:length])
    del buf[:length]
    return body


async def _read_chunked(stream: trio.SocketStream, buf: bytearray) -> bytes:
    body = bytearray()
    while True:
        while (end := buf.find(b"\r\n")) < 0:
            if not await _receive(stream, buf):
                raise _BadRequestError("chunked body cut")
        try:
            size = int(bytes(buf[:end]).split(b";")[0], 16)
        except ValueError as exc:
            raise _BadRequestError("bad chunk size") from exc
        del buf[:end + 2]
        chunk = await _read_exact(stream, buf, size + 2)
        if size == 0:
            return bytes(body)
        body += chunk[:-2]


async def _write(stream: trio.SocketStream, reply: Reply, *, close: bool) -> None:
    head = [f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}"]
    head += [f"{name}: {value}" for name, value in reply.headers]
    if close:
        head.append("connection: close")
    if reply.frames is None:
        head.append(f"content-length: {len(reply.body)}")
        await stream.send_all("\r\n".join(head).encode() + b"\r\n\r\n" + reply.body)
        return
    head.append("transfer-encoding: chunked")
    await stream.send_all("\r\n".join(head).encode() + b"\r\n\r\n")
    for frame in reply.frames:
        await stream.send_all(b"%x\r\n%s\r\n" % (len(frame), frame))
        if reply.frame_delay:
            await trio.sleep(reply.frame_delay)
    if not reply.cut:
        await stream.send_all(b"0\r\n\r\n")
