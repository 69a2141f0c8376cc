"""Test helper: a minimal connector speaking the tunnel protocol over a real WebSocket
(trio-websocket) or by polling (httpx), with keys for a running test gateway."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio
import wsproto
import wsproto.events as ws_events
from trio_websocket import WebSocketConnection, open_websocket_url

from lynkr.gateway import create_key, ring_of
from lynkr.gateway._keys import GATEWAY_STREAM
from lynkr.tunnel import Register, ResultMessage, ToolInfo
from tests.lynkr.http.gateway import Gateway

READ_FILE = ToolInfo("local_read_file", "Read a file on the user's machine",
                     {"type": "object", "properties": {"path": {"type": "string"}},
                      "required": ["path"]}, read_only=True)
BASH = ToolInfo("local_bash", "Run a command on the user's machine",
                {"type": "object", "properties": {"command": {"type": "string"}},
                 "required": ["command"]}, read_only=False)
NOOP = ToolInfo("local_noop", "Do nothing", {"type": "object"}, read_only=True)
TOOLS = (READ_FILE, BASH, NOOP)

Answer = Callable[[dict[str, Any]], Awaitable[ResultMessage | None]]
"""A call → its result; None: never answer."""


async def create_user_key(gw: Gateway, user: str,
                          scopes: str = "anthropic-proxy,mcp-callback",
                          tier: str = "enterprise") -> str:
    """A new API key of `user` in the running gateway's log; its secret."""
    ring = await trio.to_thread.run_sync(ring_of, gw.system.recorder)
    event, secret = create_key(ring, name=user, user=user, tier=tier, scopes=scopes,
                               expires_in=None, now=time.time(), by="test")
    await gw.system.store.append(GATEWAY_STREAM, ring.version, [event])
    return secret


async def read_file_answer(call: dict[str, Any]) -> ResultMessage:
    """Answers every call with the text "contents of <path>"."""
    return ResultMessage(call["call_id"], True,
                         {"text": f"contents of {call['input'].get('path')}"})


@dataclass
class FakeConnector:
    """What a connector saw: the calls and cancels it received."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    cancels: list[str] = field(default_factory=list)
    registered: dict[str, Any] | None = None
    got_call: trio.Event = field(default_factory=trio.Event)
    got_cancel: trio.Event = field(default_factory=trio.Event)


def ws_url(gw: Gateway, user: str) -> str:
    """The connector WebSocket URL of `user` at `gw`."""
    return gw.url.replace("http://", "ws://") + f"/api/mcp/ws/{user}"


@asynccontextmanager
async def ws_connector(gw: Gateway, user: str, secret: str, *, answer: Answer = read_file_answer,
                       connector_id: str = "laptop", tools: tuple[ToolInfo, ...] = TOOLS,
                       ) -> AsyncIterator[tuple[FakeConnector, WebSocketConnection]]:
    """A registered WebSocket connector answering calls with `answer` while inside."""
    seen = FakeConnector()
    async with open_websocket_url(ws_url(gw, user),
                                  extra_headers=[(b"x-api-key", secret.encode())]) as ws:
        await ws.send_message(json.dumps(Register(connector_id, tools).as_json()))
        seen.registered = json.loads(await ws.get_message())
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_serve_ws, ws, seen, answer)
            yield seen, ws
            nursery.cancel_scope.cancel()


async def _serve_ws(ws: WebSocketConnection, seen: FakeConnector, answer: Answer) -> None:
    async with trio.open_nursery() as nursery:
        while True:
            message = json.loads(await ws.get_message())
            if message["type"] == "ping":
                await ws.send_message(json.dumps({"type": "pong", "ts": message["ts"]}))
            elif message["type"] == "cancel":
                seen.cancels.append(message["call_id"])
                seen.got_cancel.set()
            elif message["type"] == "call":
                seen.calls.append(message)
                seen.got_call.set()
                nursery.start_soon(_answer_ws, ws, message, answer)


async def _answer_ws(ws: WebSocketConnection, call: dict[str, Any], answer: Answer) -> None:
    result = await answer(call)
    if result is not None:
        await ws.send_message(json.dumps(result.as_json()))


@asynccontextmanager
async def poll_connector(gw: Gateway, secret: str, *, answer: Answer = read_file_answer,
                         connector_id: str = "laptop-poll", tools: tuple[ToolInfo, ...] = TOOLS,
                         ) -> AsyncIterator[FakeConnector]:
    """A registered polling connector answering calls with `answer` while inside."""
    seen = FakeConnector()
    headers = {"x-api-key": secret}
    async with httpx.AsyncClient(base_url=gw.url, headers=headers, timeout=60) as client:
        response = await client.post("/api/mcp/register",
                                     json=Register(connector_id, tools).as_json())
        response.raise_for_status()
        seen.registered = response.json()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_serve_poll, client, connector_id, seen, answer)
            yield seen
            nursery.cancel_scope.cancel()


async def _serve_poll(client: httpx.AsyncClient, connector_id: str, seen: FakeConnector,
                      answer: Answer) -> None:
    async with trio.open_nursery() as nursery:
        while True:
            response = await client.post("/api/mcp/poll", json={"connector_id": connector_id})
            response.raise_for_status()
            for call in response.json()["calls"]:
                seen.calls.append(call)
                seen.got_call.set()
                nursery.start_soon(_answer_poll, client, call, answer)


async def _answer_poll(client: httpx.AsyncClient, call: dict[str, Any], answer: Answer) -> None:
    result = await answer(call)
    if result is not None:
        response = await client.post("/api/mcp/submit", json={"results": [result.as_json()]})
        response.raise_for_status()


async def close_of(gw: Gateway, user: str, headers: dict[str, str]) -> tuple[int, str]:
    """Open the connector WebSocket of `user` with `headers`, send a register and read
    until the gateway closes it: (close code, reason).

    A raw wsproto client rather than trio-websocket, whose client waits for the server's
    TCP close after a close frame (RFC 6455) and leaks its socket if the caller leaves
    first.
    """
    port = int(gw.url.rsplit(":", 1)[1])
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        extra = [(k.encode(), v.encode()) for k, v in headers.items()]
        await stream.send_all(ws.send(ws_events.Request(
            host=f"127.0.0.1:{port}", target=f"/api/mcp/ws/{user}", extra_headers=extra)))
        with trio.fail_after(10):
            while True:
                data = await stream.receive_some()
                if not data:
                    raise AssertionError("the gateway closed the TCP connection without a "
                                         "WebSocket close")
                ws.receive_data(data)
                for event in ws.events():
                    if isinstance(event, ws_events.AcceptConnection):
                        await stream.send_all(ws.send(ws_events.TextMessage(
                            json.dumps(Register("laptop", TOOLS).as_json()))))
                    elif isinstance(event, ws_events.RejectConnection):
                        return event.status_code, "rejected"
                    elif isinstance(event, ws_events.CloseConnection):
                        await stream.send_all(ws.send(event.response()))
                        return event.code, event.reason or ""
