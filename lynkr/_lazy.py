"""Lazy package exports: a package root that names its public API without importing it.

The CLI's quick commands import `lynkr.providers`, `lynkr.mcp`, `lynkr.tools` and
`lynkr.indexer` only for a few light names; importing every implementation module
(httpx, trio, the MCP SDK, tree-sitter) up front cost most of their start-up.
`lazy_exports` gives such a package a module-level `__getattr__` (PEP 562) that imports
an exported name from its module on first use and keeps it. The package still lists
the same names in an ``if TYPE_CHECKING:`` import block (what mypy reads) and in
`__all__`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, namespace: MutableMapping[str, Any],
                 modules: Mapping[str, Iterable[str]]) -> Callable[[str], Any]:
    """The `__getattr__` of `package`, whose globals are `namespace`.

    Args:
        package: the package's `__name__`.
        namespace: its `globals()`; a name is stored there on first use.
        modules: each implementation module, relative to the package (``"_tools"``),
            with the names it exports.

    Returns:
        The function to bind as the package's `__getattr__`; it raises `AttributeError`
        for a name that is not exported.
    """
    exports = {name: f"{package}.{module}" for module, names in modules.items()
               for name in names}

    def __getattr__(name: str) -> Any:
        try:
            module = exports[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
