"""The connection pool under each provider's pooled `httpx.AsyncClient`.

httpx 0.28 sends through `httpcore.AsyncConnectionPool`, whose bookkeeping
(`_assign_requests_to_connections`, run when a request starts and when a response is
closed) is quadratic in the number of open connections: for every idle connection it
builds a list of all connections to count them, and for every queued request it
builds two more lists. With ~32 concurrent turns that is ~700 `is_idle()` calls per
request, measured at ~0.4 ms of CPU per request (cProfile, `tools/bench_proxy.py` at
c=32). `LinearConnectionPool` makes the same decisions in one pass.

`use_linear_pool(client)` switches a client's default transport to it, keeping every
other setting of the client (limits, timeouts, TLS, proxies mounted from the
environment) as httpx built them. The client stays the one pooled client its provider
actor owns.

`send_pooled` sends one request on such a client the way `client.send(...,
stream=True)` does for a client like ours (no auth, no event hooks, redirects not
followed): the request built by `client.build_request` (default headers, cookies,
timeouts), the transport the client picks for the URL (its pool, or a proxy mounted
from the environment), the response's cookies kept, but without `send`'s auth,
redirect and hook generators and its response wrapper (~0.5 ms of CPU per call on
this machine, `tools/bench_floors.py`: `httpx` vs `transport`). A client with auth or
hooks goes through `client.send`.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpcore
import httpx
from httpcore._async.interfaces import AsyncConnectionInterface

__all__ = ["LinearConnectionPool", "send_pooled", "use_linear_pool"]

_URLS: dict[str, httpx.URL] = {}  # parsed upstream URLs (a handful per backend)


class LinearConnectionPool(httpcore.AsyncConnectionPool):
    """`httpcore.AsyncConnectionPool` with its assignment step linear (module doc).

    Same rules, in httpcore's order: drop closed connections, close expired ones,
    close idle ones while more connections are open than `max_keepalive_connections`;
    then give each queued request the first available connection to its origin, else
    a new connection below `max_connections`, else replace the first idle one.
    """

    def _assign_requests_to_connections(self) -> list[AsyncConnectionInterface]:
        closing: list[AsyncConnectionInterface] = []
        kept: list[AsyncConnectionInterface] = []
        connections = self._connections
        open_count = len(connections)
        for connection in connections:
            if connection.is_closed():
                open_count -= 1
            elif connection.has_expired() or (
                    connection.is_idle() and open_count > self._max_keepalive_connections):
                open_count -= 1
                closing.append(connection)
            else:
                kept.append(connection)
        connections[:] = kept
        for pool_request in self._requests:
            if not pool_request.is_queued():
                continue
            origin = pool_request.request.url.origin
            available = next((c for c in connections
                              if c.can_handle_request(origin) and c.is_available()), None)
            if available is not None:
                pool_request.assign_to_connection(available)
                continue
            if len(connections) >= self._max_connections:
                idle = next((c for c in connections if c.is_idle()), None)
                if idle is None:
                    continue  # stays queued until a connection frees up
                connections.remove(idle)
                closing.append(idle)
            connection = self.create_connection(origin)
            connections.append(connection)
            pool_request.assign_to_connection(connection)
        return closing


def use_linear_pool(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """Switch `client`'s default transport to `LinearConnectionPool` (before first use).

    Raises:
        TypeError: the client's transport or pool is not httpx's default one (an httpx
            or httpcore upgrade changed them: check this module against it).
    """
    transport = client._transport  # the default transport; mounts (proxies) are separate
    if not isinstance(transport, httpx.AsyncHTTPTransport):
        raise TypeError(f"unexpected httpx transport {type(transport).__name__}")
    pool = transport._pool
    if type(pool) is not httpcore.AsyncConnectionPool:
        raise TypeError(f"unexpected httpcore pool {type(pool).__name__}")
    pool.__class__ = LinearConnectionPool  # same state, one method replaced
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
    if (client.auth is not None or request.url.userinfo
            or any(client.event_hooks.values())):
        return await client.send(request, stream=True)
    transport = client._transport_for_url(request.url)
    response = await transport.handle_async_request(request)
    response.request = request
    if "set-cookie" in response.headers:
        client.cookies.extract_cookies(response)
    return response
