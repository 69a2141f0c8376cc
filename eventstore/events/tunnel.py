"""Events of `tunnel-<user>` streams: one user's `lynkr connect` connectors at the gateway.

A connector's life is `ConnectorAttached` (first `register`, over the WebSocket or by
polling; again when its tool list changes) → `ConnectorDetached` (the WebSocket
closed, a poller stopped polling, or another connection took its id over). The calls
themselves are events of the calling session (`ToolCallQueued`, `ToolCompleted`).
"""

from __future__ import annotations

from dataclasses import dataclass

from eventstore._registry import EVENTS, Event

__all__ = ["ConnectorAttached", "ConnectorDetached", "tunnel_stream"]


def tunnel_stream(user: str) -> str:
    """The stream of `user`'s connectors."""
    return f"tunnel-{user}"


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorAttached(Event):
    """A connector registered its tools (names as the model sees them)."""

    connector_id: str
    user: str
    transport: str  # "ws" or "poll"
    tools: tuple[str, ...] = ()
    key_id: str | None = None  # the credential it authenticated with (never the secret)


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorDetached(Event):
    """A connector went away; its calls in flight were redelivered or failed."""

    connector_id: str
    user: str
    reason: str  # "closed", "heartbeat_lost", "poll_stale", "replaced", "gateway_stopped"
    redelivered: int = 0  # read-only calls in flight queued again
    failed: int = 0  # calls in flight that failed ("the connector went away")
