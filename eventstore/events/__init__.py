"""Event classes, one module per stream kind; importing this package registers them all."""

from __future__ import annotations

from eventstore.events import (
    gateway,
    limits,
    mcp,
    session,
    system,
    tasks,
    tunnel,
    whatif,
    workspace,
)

__all__ = ["gateway", "limits", "mcp", "session", "system", "tasks", "tunnel", "whatif",
           "workspace"]
