"""Repository intelligence: a tree-sitter catalogue of files, symbols and references.

`Indexer` builds and queries the catalogue (`$LYNKR_DATA_DIR/index.db`) of one
workspace; the indexer actor (`actors.indexer`) owns it at run time.
`indexer_tool_specs` exposes it as server tools; `IndexerSettings` is its section of
the configuration.

`Indexer`, `SCHEMAS` and `indexer_tool_specs` are imported on first use: parser
worker processes import this package, and loading the actors, trio and the tool
registry there would add about half a second to each worker's start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lynkr.indexer._model import (
    OutlineEntry,
    Problem,
    RebuildProgress,
    RebuildReport,
    ReferenceHit,
    SymbolHit,
)
from lynkr.indexer._settings import IndexerSettings

if TYPE_CHECKING:
    from lynkr.indexer._indexer import Indexer
    from lynkr.indexer._tools import SCHEMAS, indexer_tool_specs

__all__ = [
    "SCHEMAS",
    "Indexer",
    "IndexerSettings",
    "OutlineEntry",
    "Problem",
    "RebuildProgress",
    "RebuildReport",
    "ReferenceHit",
    "SymbolHit",
    "indexer_tool_specs",
]

_LAZY = {
    "Indexer": "lynkr.indexer._indexer",
    "SCHEMAS": "lynkr.indexer._tools",
    "indexer_tool_specs": "lynkr.indexer._tools",
}


def __getattr__(name: str) -> Any:
    """Import the heavier public names on first use (see the module docstring)."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
