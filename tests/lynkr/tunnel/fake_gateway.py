"""Test helper: a minimal gateway speaking the tunnel protocol (quart-trio under hypercorn,
on 127.0.0.1), to drive `lynkr connect`'s connector without the real gateway.

`WS /api/mcp/ws/<user>` and `POST /api/mcp/register|poll|submit` on one port, one
user and key. `ws_mode` is "on", "reject" (the upgrade answered 404) or "close"
(accepted, then closed 4000 as a gateway with its WebSocket off); a wrong user or key
on the WebSocket is closed 1008. `call()` queues a call for whichever link the connector
holds and waits for its result; `drop()` closes the WebSocket as a crashing gateway
would.
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import hypercorn
import hypercorn.trio
import trio
from quart import Response, jsonify, request, websocket
from quart_trio import QuartTrio

from lynkr.tunnel import CallMessage, Register, ResultMessage, decode, encode

USER, KEY = "ann", "k-ann-test"


@dataclass
class FakeGateway:
    """The fake's state: what the connector registered and answered."""

    ws_mode: str = "on"
    url: str = ""
    registers: list[tuple[str, Register]] = field(default_factory=list)  # (link, message)
    results: dict[str, ResultMessage] = field(default_factory=dict)
    result_counts: dict[str, int] = field(default_factory=dict)
    pongs: int = 0
    pings_from_connector: int = 0
    ws_opened: int = 0
    polls_refused: int = 0  # HTTP requests answered 401
    pending: list[CallMessage] = field(default_factory=list)
    wake: trio.Event = field(default_factory=trio.Event)
    answered: trio.Event = field(default_factory=trio.Event)
    registered: trio.Event = field(default_factory=trio.Event)
    drop_now: trio.Event = field(default_factory=trio.Event)
    ids: Any = field(default_factory=lambda: itertools.count(1))

    def queue(self, tool: str, inputs: dict[str, Any], timeout_s: float = 10.0) -> str:
        """Queue a call; its id."""
        call_id = f"toolu_{next(self.ids)}"
        self.pending.append(CallMessage(call_id, tool, inputs, timeout_s))
        self.wake.set()
        return call_id

    async def wait_result(self, call_id: str) -> ResultMessage:
        """The connector's result for `call_id`."""
        while call_id not in self.results:
            self.answered = trio.Event()
            await self.answered.wait()
        return self.results[call_id]

    async def call(self, tool: str, inputs: dict[str, Any],
                   timeout_s: float = 10.0) -> ResultMessage:
        """Queue a call and wait for its result."""
        return await self.wait_result(self.queue(tool, inputs, timeout_s))

    async def wait_registered(self, count: int = 1) -> Register:
        """The latest `register` once `count` have arrived."""
        while len(self.registers) < count:
            self.registered = trio.Event()
            await self.registered.wait()
        return self.registers[-1][1]

    def record(self, link: str, message: Any) -> dict[str, Any] | None:
        """Handle one message from the connector; the answer to send, if any."""
        if isinstance(message, Register):
            self.registers.append((link, message))
            self.registered.set()
            return {"type": "registered", "connector_id": message.connector_id,
                    "tools": len(message.tools)}
        if isinstance(message, ResultMessage):
            self.result_counts[message.call_id] = self.result_counts.get(message.call_id, 0) + 1
            self.results.setdefault(message.call_id, message)
            self.answered.set()
        elif isinstance(message, dict) and message["type"] == "pong":
            self.pongs += 1
        elif isinstance(message, dict) and message["type"] == "ping":
            self.pings_from_connector += 1
            return {"type": "pong", "ts": message.get("ts")}
        return None

    def take_calls(self) -> list[CallMessage]:
        """Hand out every queued call."""
        calls, self.pending = self.pending, []
        self.wake = trio.Event()
        return calls

    def drop(self) -> None:
        """Close the WebSocket the connector holds (it must reconnect)."""
        self.drop_now.set()


async def eventually(predicate: Callable[[], bool], seconds: float = 10.0) -> None:
    """Return once `predicate()` holds (checked every 20 ms); fail after `seconds`."""
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return
        await trio.sleep(0.02)
    raise AssertionError(f"still false after {seconds} s: {predicate}")


def _authorized(headers: Any) -> bool:
    return headers.get("x-api-key") == KEY


def _app(gw: FakeGateway) -> QuartTrio:
    app = QuartTrio(__name__)

    @app.websocket("/api/mcp/ws/<user>")
    async def ws(user: str) -> Any:
        if gw.ws_mode == "reject":
            return Response("no websockets here", status=404)
        await websocket.accept()
        if gw.ws_mode == "close":
            await websocket.close(4000, "websocket disabled; use polling")
            return None
        if user != USER or not _authorized(websocket.headers):
            await websocket.close(1008, "refused by the fake gateway")
            return None
        gw.ws_opened += 1
        gw.drop_now = trio.Event()
        link = websocket._get_current_object()  # the link itself, for tasks

        async def forward() -> None:
            while True:
                await gw.wake.wait()
                for call in gw.take_calls():
                    await link.send(encode(call.as_json()))

        async def read() -> None:
            while True:
                answer = gw.record("ws", decode(await link.receive()))
                if answer is not None:
                    await link.send(encode(answer))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(forward)
            nursery.start_soon(read)
            await link.send(encode({"type": "ping", "ts": 1.0}))
            await gw.drop_now.wait()
            await link.close(1011, "the fake gateway dropped the connection")
            nursery.cancel_scope.cancel()
        return None

    @app.post("/api/mcp/register")
    async def register() -> Any:
        if not _authorized(request.headers):
            gw.polls_refused += 1
            return jsonify({"error": "bad key"}), 401
        return jsonify(gw.record("poll", decode(await request.get_json(force=True))))

    @app.post("/api/mcp/poll")
    async def poll() -> Any:
        if not _authorized(request.headers):
            return jsonify({"error": "bad key"}), 401
        with trio.move_on_after(1.0):
            await gw.wake.wait()
        return jsonify({"calls": [c.as_json() for c in gw.take_calls()]})

    @app.post("/api/mcp/submit")
    async def submit() -> Any:
        if not _authorized(request.headers):
            return jsonify({"error": "bad key"}), 401
        body = await request.get_json(force=True)
        for raw in body["results"]:
            gw.record("poll", decode(raw))
        return jsonify({"recorded": len(body["results"])})

    return app


@asynccontextmanager
async def open_fake_gateway(ws_mode: str = "on") -> AsyncIterator[FakeGateway]:
    """A fake gateway on 127.0.0.1 (a free port), stopped on exit."""
    gw = FakeGateway(ws_mode=ws_mode)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    gw.url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    config = hypercorn.Config()
    config.bind = [f"fd://{listener.detach()}"]  # hypercorn owns (and closes) the socket
    config.accesslog = None
    config.errorlog = None
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: hypercorn.trio.serve(
            _app(gw), config, shutdown_trigger=stop.wait, task_status=task_status))
        try:
            yield gw
        finally:
            stop.set()
            nursery.cancel_scope.deadline = trio.current_time() + 3
