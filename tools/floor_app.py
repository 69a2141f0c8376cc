"""The fixed stack under the proxy benchmark: hypercorn's trio worker with a trivial ASGI app.

    python tools/floor_app.py --mode fixed|httpx|transport [--upstream URL]

`fixed` answers every request with the same small JSON body (what hypercorn, h11 and
trio cost per request); `httpx` also POSTs a fixed OpenAI chat body to the upstream
through one pooled `httpx.AsyncClient` (`client.post`) and returns the upstream's
answer; `transport` does the same call through that client's own pooled transport
(the transport the client was given as `transport=`, called directly: no client layers);
`h11` is `transport` over Lynkr's `H11Transport` (`lynkr.providers`);
`relay` streams a 50-chunk answer from the upstream that way and forwards each upstream
read to the client as it comes (one ASGI `send` per read: a minimal SSE proxy); `drain`
reads that stream whole and sends it in one write (the least any relay can cost). It
prints `LISTENING <port>` once bound. Used by `tools/bench_floors.py`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import httpx
import hypercorn.config
import hypercorn.trio
import trio

_FIXED = json.dumps({"id": "msg_floor", "type": "message", "role": "assistant",
                     "content": [{"type": "text", "text": "ok"}]}).encode()
_REQUEST: dict[str, Any] = {"model": "fake", "max_tokens": 256, "messages": [
    {"role": "user", "content": "benchmark request: say something short"}]}
_CHAT = json.dumps(_REQUEST).encode()
_CHAT_STREAM = json.dumps({**_REQUEST, "stream": True,
                           "stream_options": {"include_usage": True}}).encode()
_JSON_HEADERS = {"content-type": "application/json"}


def make_app(mode: str, client: httpx.AsyncClient | None,
             transport: httpx.AsyncBaseTransport | None, url: str) -> Any:
    """The ASGI app of `mode` (module doc)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        body = _FIXED
        if client is not None and transport is not None and mode in ("relay", "drain"):
            await _relay(client, transport, url, send, batched=mode == "drain")
            return
        if client is not None and mode == "httpx":
            body = (await client.post(url, content=_CHAT,
                                      headers={"content-type": "application/json"})).content
        elif client is not None and transport is not None:
            request = client.build_request("POST", url, content=_CHAT,
                                           headers={"content-type": "application/json"})
            response = await transport.handle_async_request(request)
            try:
                body = await response.aread()
            finally:
                await response.aclose()
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return app


async def _relay(client: httpx.AsyncClient, transport: httpx.AsyncBaseTransport, url: str,
                 send: Any, *, batched: bool) -> None:
    request = client.build_request("POST", url, content=_CHAT_STREAM, headers=_JSON_HEADERS)
    response = await transport.handle_async_request(request)
    try:
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})
        held = []
        async for chunk in response.aiter_raw():
            if batched:
                held.append(chunk)
            else:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if held:
            await send({"type": "http.response.body", "body": b"".join(held),
                        "more_body": True})
    finally:
        await response.aclose()
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def run(mode: str, upstream: str) -> None:
    """Serve until cancelled."""
    config = hypercorn.config.Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    timeout, limits = httpx.Timeout(60.0), httpx.Limits(max_connections=100)
    transport: httpx.AsyncBaseTransport | None = None
    if mode in ("h11", "relay", "drain"):
        from lynkr.providers import H11Transport
        transport = H11Transport(max_connections=limits.max_connections,
                                 max_keepalive=limits.max_keepalive_connections,
                                 keepalive_expiry=limits.keepalive_expiry)
    elif mode == "transport":
        transport = httpx.AsyncHTTPTransport(limits=limits)
    client = None if mode == "fixed" else httpx.AsyncClient(
        timeout=timeout, limits=limits, transport=transport)
    async with trio.open_nursery() as nursery:
        app = make_app(mode, client, transport, f"{upstream}/chat/completions")
        binds = await nursery.start(hypercorn.trio.serve, app, config)
        print(f"LISTENING {binds[0]}", flush=True)


def main() -> int:
    """Parse arguments and serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", required=True,
                        choices=["fixed", "httpx", "transport", "h11", "relay", "drain"])
    parser.add_argument("--upstream", default="")
    args = parser.parse_args()
    trio.run(run, args.mode, args.upstream)
    return 0


if __name__ == "__main__":
    sys.exit(main())
