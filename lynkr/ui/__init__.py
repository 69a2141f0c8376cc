"""The session viewer: a page at `/ui` over the log and its projections.

`ui` is the Quart blueprint the gateway's app registers (routes in `_routes`); what a
caller may see is decided in `_access`, the SQL lives in `_queries`, and a session's
events become timeline rows and a conversation in `_timeline`. The page's script and
style are package data under `static/`: no build step and no network beyond the
gateway itself.
"""

from __future__ import annotations

from lynkr.ui._routes import ui

__all__ = ["ui"]
