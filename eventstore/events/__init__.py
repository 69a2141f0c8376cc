"""Event classes, one module per stream kind; importing this package registers them all."""

from __future__ import annotations

from eventstore.events import mcp, session, system, tasks, workspace

__all__ = ["mcp", "session", "system", "tasks", "workspace"]
