"""The callback tunnel: tools that run on a user's machine, reached through `lynkr connect`.

The gateway side is `Tunnel` (`_hub.py`: connectors, their tools offered to their own
user's sessions, calls queued, delivered, answered) and `serve_connector_socket`
(`_socket.py`: one connector's WebSocket); `lynkr/http/_tunnel_api.py` serves the routes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lynkr._lazy import lazy_exports
from lynkr.tunnel._protocol import (
    POLL_WAIT_S,
    CallMessage,
    ProtocolError,
    Register,
    ResultMessage,
    ToolInfo,
    decode,
    encode,
)
from lynkr.tunnel._settings import TunnelSettings

if TYPE_CHECKING:
    from lynkr.tunnel._hub import Tunnel, TunnelStatistics
    from lynkr.tunnel._relay import TunnelRelay, open_relay
    from lynkr.tunnel._socket import SocketLink, serve_connector_socket

# The settings (read by every CLI command) must not import trio and the tool runner.
__getattr__ = lazy_exports(__name__, globals(), {
    "_hub": ("Tunnel", "TunnelStatistics"),
    "_relay": ("TunnelRelay", "open_relay"),
    "_socket": ("SocketLink", "serve_connector_socket"),
})

__all__ = [
    "POLL_WAIT_S",
    "CallMessage",
    "ProtocolError",
    "Register",
    "ResultMessage",
    "SocketLink",
    "ToolInfo",
    "Tunnel",
    "TunnelRelay",
    "TunnelSettings",
    "TunnelStatistics",
    "decode",
    "encode",
    "open_relay",
    "serve_connector_socket",
]
