"""A provider's pooled `httpx.AsyncClient`: fitted with `H11Transport`, and sent on.

`use_h11_transport(client)` makes `H11Transport` (`_transport`) the client's default
transport, with the limits and TLS settings httpx built for it; `pool_statistics(client)`
reads that transport's pool (for `/health`).

`send_pooled` sends the way `client.send(..., stream=True)` does for a client like
ours (no auth, no event hooks, redirects not followed): the request built by
`client.build_request` (default headers, cookies, timeouts), the transport the client
picks for the URL (its default transport, or a proxy mounted from the environment),
the response's cookies kept, but without `send`'s auth, redirect and hook generators
and its response wrapper (~0.5 ms of CPU per call on this machine,
`tools/bench_floors.py`: `httpx` vs `transport`). A client with auth or hooks goes
through `client.send`.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpcore
import httpx

from lynkr.providers._transport import H11Transport, TransportStatistics

__all__ = ["pool_statistics", "send_pooled", "use_h11_transport"]

_URLS: dict[str, httpx.URL] = {}  # parsed upstream URLs (a handful per backend)


async def send_pooled(client: httpx.AsyncClient, method: str, url: str, *,
                      headers: Mapping[str, str], content: bytes) -> httpx.Response:
    """Send a request on `client` and return the response with its body unread (module doc).

    The caller must close the response (`aclose`).

    Raises:
        RuntimeError: the client is closed (as `client.send` raises).
        httpx.HTTPError: the request failed.
    """
    if client.is_closed:
        raise RuntimeError("Cannot send a request, as the client has been closed.")
    parsed = _URLS.get(url)
    if parsed is None:
        if len(_URLS) >= 256:
            _URLS.clear()
        parsed = _URLS[url] = httpx.URL(url)
    request = client.build_request(method, parsed, headers=headers, content=content)
    if (client.auth is not None or request.url.userinfo
            or any(client.event_hooks.values())):
        return await client.send(request, stream=True)
    transport = client._transport_for_url(request.url)
    response = await transport.handle_async_request(request)
    response.request = request
    if "set-cookie" in response.headers:
        client.cookies.extract_cookies(response)
    return response


def use_h11_transport(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """Make `H11Transport` `client`'s default transport (before first use), with the
    limits and TLS settings httpx built for it; mounted proxies stay as they are.

    Raises:
        TypeError: the client's transport is not httpx's default one, or is set up for
            something this transport does not do (HTTP/2, a Unix socket, a local
            address, socket options, connect retries).
    """
    transport = client._transport
    if not isinstance(transport, httpx.AsyncHTTPTransport):
        raise TypeError(f"unexpected httpx transport {type(transport).__name__}")
    pool = transport._pool
    if type(pool) is not httpcore.AsyncConnectionPool:
        raise TypeError(f"unexpected httpcore pool {type(pool).__name__}")
    unsupported = [name for name, value in (
        ("http2", pool._http2), ("uds", pool._uds), ("local_address", pool._local_address),
        ("socket_options", pool._socket_options), ("retries", pool._retries)) if value]
    if unsupported:
        raise TypeError(f"H11Transport does not support {', '.join(unsupported)}")
    client._transport = H11Transport(
        ssl_context=pool._ssl_context, max_connections=pool._max_connections,
        max_keepalive=pool._max_keepalive_connections,
        keepalive_expiry=pool._keepalive_expiry)
    return client


def pool_statistics(client: object) -> TransportStatistics | None:
    """The pool of `client`'s default transport, if it is an `H11Transport` (else None:
    a client made elsewhere, such as a test's mock transport)."""
    transport = getattr(client, "_transport", None)
    return transport.statistics() if isinstance(transport, H11Transport) else None
