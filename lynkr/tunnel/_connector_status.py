"""The connector's status: one line rewritten in place on a terminal, log lines otherwise.

States: `connecting`, `connected` (WebSocket), `polling` (HTTP fallback),
`reconnecting` (with the seconds left), `stopped`. On a TTY the line reads e.g.
``lynkr connect: connected to http://gw:8080 as ann (websocket) · 7 tools · 1 running``;
elsewhere every change is one structlog event `connector_status` with the same facts.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TextIO

import structlog

if TYPE_CHECKING:
    from lynkr.tunnel._connector import Connector

__all__ = ["StatusLine"]

log = structlog.get_logger()


class StatusLine:
    """Where the connector reports its state (see module docstring)."""

    def __init__(self, stream: TextIO | None, *, tty: bool) -> None:
        self.stream = stream
        self.tty = tty
        self.last: str | None = None

    @classmethod
    def for_stream(cls, stream: TextIO | None) -> StatusLine:
        """A status line on `stream` (stderr when None), in place only on a terminal."""
        stream = stream or sys.stderr
        return cls(stream, tty=stream.isatty())

    def text(self, state: str, connector: Connector, **facts: Any) -> str:
        """The line for `state`."""
        settings = connector.settings
        where = f"{settings.url} as {settings.user_id}"
        tools = len(connector.register_message().tools)
        if state == "reconnecting":
            why = f" ({facts['reason']})" if facts.get("reason") else ""
            return (f"lynkr connect: reconnecting to {settings.url} in "
                    f"{facts.get('delay_s', 0):.0f} s{why}")
        if state in ("connected", "polling"):
            link = "websocket" if state == "connected" else "polling over HTTP"
            return (f"lynkr connect: {state} to {where} ({link}) · {tools} tools · "
                    f"{connector.running} running")
        return f"lynkr connect: {state} ({where})"

    def show(self, state: str, connector: Connector, **facts: Any) -> None:
        """Report `state` (a terminal gets the line rewritten; logs get a changed state)."""
        line = self.text(state, connector, **facts)
        if self.tty and self.stream is not None:
            end = "\n" if state == "stopped" else ""
            self.stream.write(f"\r\x1b[K{line}{end}")
            self.stream.flush()
        elif line != self.last:
            log.info("connector_status", state=state, url=connector.settings.url,
                     user_id=connector.settings.user_id,
                     tools=len(connector.register_message().tools), **facts)
        self.last = line
