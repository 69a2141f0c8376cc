"""Sending one request on a provider's pooled `httpx.AsyncClient`, without `client.send`.

`send_pooled` sends the way `client.send(..., stream=True)` does for a client like ours
(no auth, no event hooks, redirects not followed): the request built by
`client.build_request` (default headers, cookies, timeouts), the transport the client
picks for the URL (its default transport, `H11Transport` in `_transport`, or a proxy
mounted from the environment), the response's cookies kept, but without `send`'s auth,
redirect and hook generators and its response wrapper (~0.5 ms of CPU per call on
this machine, `tools/bench_floors.py`: `httpx` vs `transport`). A client with auth or
hooks goes through `client.send`.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

__all__ = ["send_pooled"]

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
