"""A provider's pooled `httpx.AsyncClient` over `H11Transport`, and sending on it.

`pooled_client(timeout=..., limits=...)` builds the client through httpx's public
extension point, `httpx.AsyncClient(transport=H11Transport(...))`, with the limits
and TLS settings passed to the transport explicitly, and remembers that transport
(weakly, by client) for `send_pooled` and `pool_statistics`. httpx ignores proxies
named in the environment (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`) for a client
given its own transport, so when one is named the client is httpx's own, with its
transports: proxies and `NO_PROXY` are honoured exactly as httpx honours them, and
such a client has no `H11Transport` (no pool statistics in `/health`).

`send_pooled` sends the way `client.send(..., stream=True)` does for such a client
(no auth, no event hooks, redirects not followed): the request built by
`client.build_request` (default headers, cookies, timeouts), handed straight to the
client's `H11Transport`, the response's cookies kept, but without `send`'s auth,
redirect and hook generators and its response wrapper (~0.5 ms of CPU per call on
this machine, `tools/bench_floors.py`: `httpx` vs `transport`). Any other client (one
made while the environment named a proxy, a test's mock) and one with auth or hooks
goes through `client.send`.
"""

from __future__ import annotations

import functools
import ssl
import urllib.request
import weakref
from collections.abc import Mapping

import httpx

from lynkr.providers._transport import H11Transport, TransportStatistics

__all__ = ["pool_statistics", "pooled_client", "send_pooled"]

_URLS: dict[str, httpx.URL] = {}  # parsed upstream URLs (a handful per backend)
_TIMEOUT = httpx.Timeout(5.0)  # httpx's defaults
_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


_POOLED: weakref.WeakKeyDictionary[httpx.AsyncClient, H11Transport] = (
    weakref.WeakKeyDictionary())


def pooled_client(*, timeout: httpx.Timeout = _TIMEOUT, limits: httpx.Limits = _LIMITS,
                  verify: ssl.SSLContext | bool = True, trust_env: bool = True,
                  follow_redirects: bool = False) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` whose transport is an `H11Transport` with `limits`
    (httpx's own transports if the environment names a proxy: module docstring).

    Args:
        timeout: the client's default timeouts (each request carries them; httpx's
            default: 5 s each).
        limits: connections open at most, kept alive at most, and for how long
            (httpx's default: 100, 20, 5 s).
        verify: TLS verification, as httpx takes it (True: certifi, or
            `SSL_CERT_FILE`/`SSL_CERT_DIR` when `trust_env`).
        trust_env: read proxies and CA settings from the environment, as httpx does.
        follow_redirects: as httpx's client option.

    Returns:
        The client; close it with `aclose()`.
    """
    client_with = functools.partial(httpx.AsyncClient, timeout=timeout, limits=limits,
                                    verify=verify, trust_env=trust_env,
                                    follow_redirects=follow_redirects)
    proxies = urllib.request.getproxies() if trust_env else {}
    if any(proxies.get(scheme) for scheme in ("http", "https", "all")):  # what httpx reads
        return client_with()
    transport = H11Transport(
        ssl_context=httpx.create_ssl_context(verify=verify, trust_env=trust_env),
        max_connections=limits.max_connections,
        max_keepalive=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry)
    client = client_with(transport=transport)
    _POOLED[client] = transport
    return client


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
    transport = _POOLED.get(client)
    if (transport is None or client.auth is not None or request.url.userinfo
            or any(client.event_hooks.values())):
        return await client.send(request, stream=True)
    response = await transport.handle_async_request(request)
    response.request = request
    if "set-cookie" in response.headers:
        client.cookies.extract_cookies(response)
    return response


def pool_statistics(client: object) -> TransportStatistics | None:
    """The pool of a `pooled_client`'s `H11Transport` (None for any other client, such
    as a test's mock transport)."""
    transport = _POOLED.get(client) if isinstance(client, httpx.AsyncClient) else None
    return None if transport is None else transport.statistics()
