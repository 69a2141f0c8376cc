"""Web tools: `web_fetch` (guarded against SSRF) and `web_search` (SearxNG JSON API).

`web_fetch` follows redirects itself: every hop's host is checked against the
allow-list and every address it resolves to is checked (see `_guard`), then the
request goes to the checked address with the original Host header and TLS server
name, so DNS rebinding cannot swap the address. Sizes and times are limited; HTML
comes back as readable text. No proxy from the environment is used.
"""

from __future__ import annotations

import ipaddress
import json
import ssl
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any
from urllib.parse import SplitResult, urlencode, urljoin, urlsplit

import certifi
import httpx
import trio

from lynkr.errors import ToolError
from lynkr.tools import Decision, ToolContext, ToolSpec
from lynkr.workspace._guard import decide_addresses, decide_url
from lynkr.workspace._html import html_to_text

__all__ = ["Resolver", "resolve_host", "web_tools"]

Resolver = Callable[[str, int], Awaitable[list[str]]]
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_TEXTUAL = ("text/", "application/json", "application/xml", "application/xhtml")


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (an IP literal resolves to itself)."""
    infos = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def _pinned_request(parts: SplitResult, ip: str) -> httpx.Request:
    port = parts.port or (443 if parts.scheme == "https" else 80)
    literal = f"[{ip}]" if ipaddress.ip_address(ip.split("%", 1)[0]).version == 6 else ip
    target = parts._replace(netloc=f"{literal}:{port}").geturl()
    host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    return httpx.Request("GET", target, headers={
        "Host": host_header or "", "User-Agent": "Lynkr web_fetch",
        "Accept": "text/html,text/plain,application/json;q=0.9,*/*;q=0.5"},
        extensions={"sni_hostname": parts.hostname or ""})


async def _read_body(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    body = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            body.extend(chunk)
            if len(body) > limit:
                # Closing the connection ends the iteration from below with an error, so
                # httpx's generators finish properly instead of being abandoned mid-way.
                await response.aclose()
    except httpx.HTTPError:
        if len(body) <= limit:
            raise
    return bytes(body[:limit]), len(body) > limit


def _shape(url: str, response: httpx.Response, body: bytes, truncated: bool) -> dict[str, Any]:
    ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
    result: dict[str, Any] = {"url": url, "status": response.status_code,
                              "content_type": ctype, "bytes": len(body), "truncated": truncated}
    if ctype and not ctype.startswith(_TEXTUAL):
        return {**result, "binary": True, "note": "binary content: not shown"}
    try:
        text = body.decode(response.encoding or "utf-8", "replace")
    except LookupError:  # a charset name Python does not know
        text = body.decode("utf-8", "replace")
    if ctype in ("text/html", "application/xhtml+xml") or (
            not ctype and text.lstrip()[:15].lower().startswith(("<!doctype html", "<html"))):
        title, text = html_to_text(text)
        result["title"] = title
    return {**result, "text": text}


class _Fetcher:
    """One `web_fetch` call: the hops it follows under the guard."""

    def __init__(self, ctx: ToolContext, resolve: Resolver) -> None:
        self.ctx = ctx
        self.resolve = resolve
        self.settings = ctx.settings

    async def pin(self, parts: SplitResult) -> str:
        """Resolve the hop's host, decide on every address, return the one to connect to."""
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            ips = await self.resolve(host, port)
        except OSError as exc:
            raise ToolError(f"cannot resolve {host}: {exc}") from exc
        if not ips:
            raise ToolError(f"{host} resolves to no address")
        await self.ctx.enforce(decide_addresses(self.settings, host, ips))
        return ips[0]

    async def fetch(self, client: httpx.AsyncClient, url: str) -> dict[str, Any]:
        """Follow redirects hop by hop, each one checked and pinned; shape the final body."""
        parts = urlsplit(url)
        for hop in range(self.settings.web_fetch_max_redirects + 1):
            if hop:  # the first hop's URL was decided by the tool's check
                decision, checked = decide_url(self.settings, url)
                await self.ctx.enforce(decision)
                parts = checked or parts
            request = _pinned_request(parts, await self.pin(parts))
            response = await client.send(request, stream=True)
            try:
                location = response.headers.get("location")
                if response.status_code in _REDIRECTS and location:
                    url = urljoin(url, location)
                    continue
                body, truncated = await _read_body(response, self.settings.web_fetch_max_bytes)
                return _shape(url, response, body, truncated)
            finally:
                with trio.CancelScope(shield=True):  # a cancelled close would leak the socket
                    await response.aclose()
        raise ToolError(f"more than {self.settings.web_fetch_max_redirects} redirects "
                        "(WEB_FETCH_MAX_REDIRECTS)")


async def _url_check(ctx: ToolContext, inputs: Mapping[str, Any]) -> Decision:
    return decide_url(ctx.settings, inputs["url"])[0]


def _fetch_handler(resolve: Resolver) -> Callable[[ToolContext, Mapping[str, Any]],
                                                  Awaitable[Any]]:
    async def handle(ctx: ToolContext, inputs: Mapping[str, Any]) -> Any:
        timeout = ctx.settings.web_fetch_timeout_ms / 1000
        bundle = ctx.settings.web_fetch_ca_bundle
        try:
            verify = await trio.to_thread.run_sync(partial(
                ssl.create_default_context, cafile=str(bundle or certifi.where())))
        except (OSError, ssl.SSLError) as exc:
            raise ToolError(f"cannot load WEB_FETCH_CA_BUNDLE {bundle}: {exc}") from exc
        try:
            with trio.fail_after(timeout):
                async with httpx.AsyncClient(trust_env=False, follow_redirects=False,
                                             timeout=timeout, verify=verify) as client:
                    return await _Fetcher(ctx, resolve).fetch(client, inputs["url"])
        except trio.TooSlowError as exc:
            raise ToolError(f"fetch took longer than {ctx.settings.web_fetch_timeout_ms} ms "
                            "(WEB_FETCH_TIMEOUT_MS)") from exc
        except httpx.HTTPError as exc:
            raise ToolError(f"fetch failed: {_describe(exc)}") from exc

    return handle


def _describe(exc: BaseException) -> str:
    """The error and its first cause with a message (httpx often wraps an empty one)."""
    parts = [type(exc).__name__]
    seen: BaseException | None = exc
    while seen is not None:
        if str(seen):
            parts.append(str(seen))
            break
        seen = seen.__cause__ or seen.__context__
    return ": ".join(parts)


async def _search_check(ctx: ToolContext, inputs: Mapping[str, Any]) -> Decision:
    endpoint = ctx.settings.web_search_endpoint
    if not endpoint:
        return Decision.deny("web", "web.search.endpoint", "no search endpoint is configured",
                             setting="WEB_SEARCH_ENDPOINT (a SearxNG base URL)")
    return Decision.allow("web", "web.search.endpoint",
                          "the operator configured the search endpoint",
                          host=urlsplit(endpoint).hostname)


async def _search(ctx: ToolContext, inputs: Mapping[str, Any]) -> Any:
    endpoint = (ctx.settings.web_search_endpoint or "").rstrip("/")
    query = urlencode({"q": inputs["query"], "format": "json"})
    timeout = ctx.settings.web_fetch_timeout_ms / 1000
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=timeout) as client:
            response = await client.get(f"{endpoint}/search?{query}")
            response.raise_for_status()
            data = response.json()
    except (httpx.HTTPError, json.JSONDecodeError) as exc:
        raise ToolError(f"search failed: {type(exc).__name__}: {exc}") from exc
    raw = data.get("results", []) if isinstance(data, dict) else []
    limit = int(inputs.get("max_results", 10))
    results = [{"title": r.get("title"), "url": r.get("url"), "snippet": r.get("content")}
               for r in raw if isinstance(r, dict)][:limit]
    return {"query": inputs["query"], "results": results}


def web_tools(resolve: Resolver | None = None) -> list[ToolSpec]:
    """The two web tools; `resolve` replaces DNS (tests map names to addresses)."""
    return [
        ToolSpec(name="web_fetch", policy="web", check=_url_check, effects=False,
                 handler=_fetch_handler(resolve or resolve_host),
                 description="Fetch a web page from an allowed host as readable text.",
                 input_schema={"type": "object", "additionalProperties": False,
                               "required": ["url"],
                               "properties": {"url": {"type": "string", "minLength": 1,
                                                      "maxLength": 4000}}}),
        ToolSpec(name="web_search", policy="web", check=_search_check, handler=_search,
                 effects=False,
                 description="Search the web through the configured SearxNG endpoint.",
                 input_schema={"type": "object", "additionalProperties": False,
                               "required": ["query"],
                               "properties": {"query": {"type": "string", "minLength": 1,
                                                        "maxLength": 500},
                                              "max_results": {"type": "integer", "minimum": 1,
                                                              "maximum": 50}}}),
    ]
