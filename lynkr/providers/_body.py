"""Decoding an HTTP/1.1 response body off the wire, without I/O (RFC 9112 §6 and §7.1).

`H11Transport` lets h11 parse the response head, then decodes the body here. h11 turns
every chunk of a chunked body into a `Data` event through its general state machine
(~20 µs of CPU per chunk); an upstream SSE stream is one chunk per event, so for a
50-event answer that was the largest cost of reading it. `BodyDecoder` does one thing:
given the framing the head announced, it turns received bytes into payload bytes,
joining every chunk that a read delivered into one piece, and says when the body ends
and whether bytes followed it.

Framing (`framing_of`), as RFC 9112 §6.3 orders it: no body for a HEAD request and for
1xx, 204 and 304 responses; else `Transfer-Encoding` whose last coding is `chunked`
means chunked, and any other transfer coding means "until the connection closes"; else
`Content-Length` (h11 has validated it) means that many bytes; else until close.

Limits: a chunk-size line (with extensions) or a trailer line longer than 4 KiB, or
more than 64 KiB of trailers, is a protocol error, like a malformed size or a missing
CRLF after a chunk's data. Trailers are read and dropped (nothing here needs them).
"""

from __future__ import annotations

import re
from enum import Enum

import httpx

__all__ = ["BodyDecoder", "Framing", "framing_of"]

_MAX_LINE = 4096
_MAX_TRAILERS = 65536
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;.*)?")


class Framing(Enum):
    """How a response body is delimited."""

    NONE = "none"
    LENGTH = "length"
    CHUNKED = "chunked"
    CLOSE = "close"  # until the server closes the connection


def framing_of(method: str, status: int, headers: list[tuple[bytes, bytes]],
               ) -> tuple[Framing, int]:
    """The body's framing and, for `LENGTH`, its length, from a response head.

    Args:
        method: the request's method.
        status: the response's status code.
        headers: the response's headers, names lowercase (as h11 gives them).
    """
    if method == "HEAD" or status < 200 or status in (204, 304):
        return Framing.NONE, 0
    length = None
    for name, value in headers:
        if name == b"transfer-encoding":
            last = value.rsplit(b",", 1)[-1].strip().lower()
            return (Framing.CHUNKED if last == b"chunked" else Framing.CLOSE), 0
        if name == b"content-length":
            length = int(value)
    if length is None:
        return Framing.CLOSE, 0
    return (Framing.LENGTH, length) if length else (Framing.NONE, 0)


def _error(message: str) -> httpx.RemoteProtocolError:
    return httpx.RemoteProtocolError(message)


class BodyDecoder:
    """Payload bytes from the received bytes of one body (module doc).

    `feed(data)` returns the payload `data` completed (maybe b""); `done` turns True at
    the end of the body, and `extra` then says whether bytes followed it (the
    connection cannot be reused). `end_of_input()` is called when the peer closed.
    """

    __slots__ = ("_buffer", "_framing", "_left", "_state", "_trailers", "done", "extra")

    def __init__(self, framing: Framing, length: int = 0) -> None:
        self._framing = framing
        self._left = length  # LENGTH: bytes still to come; CHUNKED: of this chunk
        self._buffer = b""  # CHUNKED: received bytes not decoded yet
        self._state = "size"  # CHUNKED: size, data, data-end or trailers
        self._trailers = 0
        self.done = framing is Framing.NONE
        self.extra = False

    def feed(self, data: bytes) -> bytes:
        """Decode received `data`; the payload it completes.

        Raises:
            httpx.RemoteProtocolError: the bytes are not a well-formed body.
        """
        if self.done:
            self.extra = self.extra or bool(data)
            return b""
        framing = self._framing
        if framing is Framing.CHUNKED:
            return self._chunked(data)
        if framing is Framing.CLOSE:
            return data
        left = self._left
        if len(data) < left:
            self._left = left - len(data)
            return data
        self._left = 0
        self.done = True
        if len(data) > left:
            self.extra = True
            return data[:left]
        return data

    def end_of_input(self) -> None:
        """The peer closed the connection: the end of a `CLOSE` body, else an error.

        Raises:
            httpx.RemoteProtocolError: the body was not complete.
        """
        if self.done:
            return
        if self._framing is not Framing.CLOSE:
            raise _error("peer closed connection without sending complete message body")
        self.done = True

    def _chunked(self, data: bytes) -> bytes:
        buffer = self._buffer + data if self._buffer else data
        out: list[bytes] = []
        pos, end, state, left = 0, len(buffer), self._state, self._left
        while pos < end:
            if state == "data":
                take = min(left, end - pos)
                out.append(buffer[pos:pos + take])
                pos += take
                left -= take
                if left:
                    break
                state = "data-end"
            elif state == "data-end":
                if end - pos < 2:
                    break
                if buffer[pos:pos + 2] != b"\r\n":
                    raise _error("malformed chunked body: no CRLF after chunk data")
                pos += 2
                state = "size"
            else:
                eol = buffer.find(b"\r\n", pos, pos + _MAX_LINE + 2)
                if eol < 0:
                    if end - pos > _MAX_LINE:
                        raise _error("malformed chunked body: line too long")
                    break
                line, pos = buffer[pos:eol], eol + 2
                if state == "size":
                    match = _CHUNK_SIZE.fullmatch(line)
                    if match is None:
                        raise _error("malformed chunked body: bad chunk size")
                    left = int(match.group(1), 16)
                    state = "data" if left else "trailers"
                elif line:  # a trailer field: read and dropped
                    self._trailers += len(line) + 2
                    if self._trailers > _MAX_TRAILERS:
                        raise _error("malformed chunked body: trailers too large")
                else:  # the empty line after the last chunk and its trailers
                    self.done = True
                    self.extra = pos < end
                    pos = end
                    break
        self._buffer, self._state, self._left = buffer[pos:], state, left
        if len(out) == 1:
            return out[0]
        return b"".join(out)
