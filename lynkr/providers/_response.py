"""A response body on its pooled connection, as httpx reads it (`H11Transport`'s half).

`ResponseBody` is the `httpx.AsyncByteStream` of every response `H11Transport`
returns: it reads through the transport, decodes with `BodyDecoder`, and hands the
connection back to the pool at the body's end, or closes it if the body is abandoned,
fails or is cancelled. `says_close` reads a `Connection: close` option.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from lynkr.providers._body import BodyDecoder

if TYPE_CHECKING:
    from lynkr.providers._transport import H11Transport, PooledConnection

__all__ = ["ResponseBody", "says_close"]


class ResponseBody(httpx.AsyncByteStream):
    """A response body on its connection; hands the connection back when read to the end.

    An async iterator object rather than an async generator: a body abandoned half
    read leaves no suspended generator behind for the garbage collector to finalize.
    Each step returns all the payload one read delivered (`BodyDecoder`).
    """

    __slots__ = ("_connection", "_decoder", "_finished", "_first", "_read", "_reusable",
                 "_transport")

    def __init__(self, transport: H11Transport, connection: PooledConnection, read: float,
                 decoder: BodyDecoder, reusable: bool, first: bytes) -> None:
        self._transport = transport
        self._connection: PooledConnection | None = connection
        self._read = read
        self._decoder = decoder
        self._reusable = reusable
        self._first = first  # payload that arrived with the head
        self._finished = False

    def __aiter__(self) -> ResponseBody:
        return self

    async def __anext__(self) -> bytes:
        connection = self._connection
        if connection is None:
            if self._finished:
                raise StopAsyncIteration
            raise httpx.StreamClosed()
        if self._first:
            payload, self._first = self._first, b""
            return payload
        decoder = self._decoder
        kept = False
        try:
            while not decoder.done:
                data = await self._transport.receive(connection, self._read)
                if not data:
                    decoder.end_of_input()
                    self._reusable = False
                    continue
                payload = decoder.feed(data)
                if payload:
                    kept = True
                    return payload
            self._connection, self._finished, kept = None, True, True
            self._transport._release(connection, reusable=self._reusable and not decoder.extra)
            raise StopAsyncIteration
        finally:
            if not kept:  # failed or cancelled: the connection is in an unknown state
                self._connection = None
                self._transport._drop(connection)

    async def aclose(self) -> None:
        """Close the connection unless the body was read to its end."""
        connection, self._connection = self._connection, None
        if connection is not None:
            self._transport._drop(connection)


def says_close(headers: list[tuple[bytes, bytes]]) -> bool:
    """A `PooledConnection` header with the `close` option."""
    return any(name.lower() == b"connection" and b"close" in value.lower()
               for name, value in headers)
