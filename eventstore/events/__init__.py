"""Event classes, one module per stream kind; importing this package registers them all."""

from __future__ import annotations

from eventstore.events import session, system

__all__ = ["session", "system"]
