"""The registry of projections the `ProjectionStore` runs.

Adding a projection is one new module defining `PROJECTION = Projection(...)` and
one line here: its module name in `MODULES`.
"""

from __future__ import annotations

import importlib

from eventstore.projections._model import Projection

__all__ = ["MODULES", "all_projections", "projection_names"]

MODULES: tuple[str, ...] = (
    "sessions",
    "transcript",
    "usage",
    "policy_audit",
    "tasks",
    "test_runs",
    "mcp_catalogue",
    "open_tool_calls",
    "keys",
)


def all_projections() -> list[Projection]:
    """Every registered projection, in `MODULES` order.

    Raises:
        TypeError: a listed module has no `PROJECTION`.
    """
    found = []
    for name in MODULES:
        module = importlib.import_module(f"eventstore.projections.{name}")
        projection = getattr(module, "PROJECTION", None)
        if not isinstance(projection, Projection):
            raise TypeError(f"eventstore.projections.{name} defines no PROJECTION")
        found.append(projection)
    return found


def projection_names() -> list[str]:
    """The names `lynkr projections rebuild NAME` accepts."""
    return [p.name for p in all_projections()]
