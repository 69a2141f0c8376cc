"""`serve_connector_socket`: one connector's WebSocket, from its `register` to its close.

Three tasks share the connection: the reader (`register`, `result`, `ping`/`pong`), the
sender (the `call`s and `cancel`s `Tunnel.next_message` hands out to its connector) and
the heartbeat (a `ping` every LYNKR_TUNNEL_HEARTBEAT seconds; a connection silent for
three of them is closed with 1001 "heartbeat lost"). Sends are serialized by one lock.
A message that is not the protocol is logged and skipped (the connection stays: one bad
frame from a newer connector must not cost the user's calls in flight). However the
connection ends, its connector is detached (`Tunnel.detach`), shielded.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol

import structlog
import trio

from lynkr.errors import LynkrError
from lynkr.gateway import Principal
from lynkr.tunnel._hub import Tunnel
from lynkr.tunnel._protocol import ProtocolError, Register, ResultMessage, decode, encode
from lynkr.tunnel._state import Connector

__all__ = ["SILENCE_LIMIT", "SocketLink", "serve_connector_socket"]

log = structlog.get_logger()

SILENCE_LIMIT = 3  # heartbeats without a word from the connector before it is closed


class SocketLink(Protocol):
    """The WebSocket as this module uses it (Quart's `websocket` fits)."""

    async def receive(self) -> str | bytes:
        """The next message."""

    async def send(self, data: str) -> None:
        """Send one text message."""

    async def close(self, code: int, reason: str = "") -> None:
        """Close with `code` and `reason`."""


class _Socket:
    """One connection's state: its connector, the send lock, when it was last heard."""

    def __init__(self, tunnel: Tunnel, link: SocketLink, principal: Principal,
                 user: str) -> None:
        self.tunnel = tunnel
        self.link = link
        self.principal = principal
        self.user = user
        self.connector: Connector | None = None
        self.reason = "closed"
        self.heard = trio.current_time()
        self.lock = trio.Lock()
        self.closing = False  # this side is closing the connection

    async def send(self, message: Mapping[str, Any]) -> None:
        async with self.lock:
            await self.link.send(encode(message))

    async def close(self, nursery: trio.Nursery, code: int, reason: str) -> None:
        """Detach the connector (the connection's end is in the state before the peer
        hears of it), close with `code`, stop the connection's tasks."""
        self.closing = True
        if self.connector is not None:
            await self.tunnel.detach(self.connector, self.reason)
        with trio.move_on_after(1):
            async with self.lock:
                await self.link.close(code, reason)
        nursery.cancel_scope.cancel()

    async def read(self, nursery: trio.Nursery) -> None:
        while True:
            text = await self.link.receive()
            self.heard = trio.current_time()
            if self.connector is not None:
                self.tunnel.touch(self.connector)
            try:
                message = decode(text)
            except ProtocolError as exc:
                log.warning("tunnel_message_skipped", user=self.user, error=str(exc))
                continue
            if isinstance(message, Register):
                try:
                    await self.register(nursery, message)
                except LynkrError as exc:  # a tool name the gateway cannot offer
                    self.reason = "refused"
                    await self.close(nursery, 1008, exc.message[:120])
                    return
            elif isinstance(message, ResultMessage):
                self.tunnel.resolve(self.user, message)
            elif isinstance(message, dict) and message.get("type") == "ping":
                await self.send({"type": "pong", "ts": message.get("ts", time.time())})

    async def register(self, nursery: trio.Nursery, message: Register) -> None:
        previous = self.connector
        if previous is not None and previous.connector_id != message.connector_id:
            await self.tunnel.detach(previous, "renamed")
            previous = None
        connector = await self.tunnel.attach(self.user, message, transport="ws",
                                             key_id=self.principal.key_id, current=previous)
        self.connector = connector
        await self.send({"type": "registered", "connector_id": connector.connector_id,
                         "tools": len(connector.tools)})
        if connector is not previous:
            nursery.start_soon(self.forward, nursery, connector)

    async def forward(self, nursery: trio.Nursery, connector: Connector) -> None:
        """Send `connector`'s calls and cancels until it is detached."""
        while (message := await self.tunnel.next_message(connector)) is not None:
            await self.send(message)
        if connector is self.connector and not self.closing:  # another connection took its id
            self.reason = "replaced"
            await self.close(nursery, 1000, "another connection registered this connector id")

    async def heartbeat(self, nursery: trio.Nursery, every: float) -> None:
        while True:
            await trio.sleep(every)
            if trio.current_time() - self.heard > SILENCE_LIMIT * every:
                self.reason = "heartbeat_lost"
                log.info("tunnel_heartbeat_lost", user=self.user,
                         silent_s=round(trio.current_time() - self.heard, 1))
                await self.close(nursery, 1001, "heartbeat lost")
                return
            await self.send({"type": "ping", "ts": time.time()})


async def serve_connector_socket(tunnel: Tunnel, link: SocketLink, principal: Principal,
                                 user: str) -> None:
    """Serve one accepted, authenticated connector WebSocket of `user` until it ends."""
    socket = _Socket(tunnel, link, principal, user)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(socket.heartbeat, nursery, tunnel.settings.heartbeat)
            await socket.read(nursery)
    finally:
        if socket.connector is not None and not socket.connector.gone:
            with trio.CancelScope(shield=True):
                await tunnel.detach(socket.connector, socket.reason)
