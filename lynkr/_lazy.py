"""Lazy package exports: a package root that names its public API without importing it.

The CLI's quick commands import `lynkr.providers`, `lynkr.mcp` and `lynkr.tools` only for
a few light names; importing every implementation module (httpx, trio, the MCP SDK) up
front cost most of their start-up. `lazy_exports` gives such a package a module-level
`__getattr__` that imports an exported name from its module on first use and keeps it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str],
                 namespace: MutableMapping[str, Any]) -> Callable[[str], Any]:
    """The `__getattr__` of `package`: `exports` maps each name to its module.

    Raises (from the returned function):
        AttributeError: the name is not exported.
    """

    def __getattr__(name: str) -> Any:
        try:
            module = exports[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
