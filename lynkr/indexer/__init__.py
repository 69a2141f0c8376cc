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

from typing import TYPE_CHECKING

from lynkr._lazy import lazy_exports
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

__getattr__ = lazy_exports(__name__, globals(), {
    "_indexer": ("Indexer",),
    "_tools": ("SCHEMAS", "indexer_tool_specs"),
})
