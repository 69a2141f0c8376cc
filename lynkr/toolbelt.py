"""The server toolbelt, assembled: workspace tools plus the indexer and its actor.

`open_toolbelt(settings, store)` is used by the gateway (`lynkr.system.open_system`) and
by `lynkr tool …` on the command line, so both see the same tools. MCP tools are added
by the gateway only, where the MCP supervisor runs (`lynkr.system`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pykka

from actors import EventStore, IndexerActor
from lynkr.config import Settings
from lynkr.indexer import Indexer, indexer_tool_specs
from lynkr.tools import ToolRegistry
from lynkr.workspace import workspace_tools

__all__ = ["Toolbelt", "open_toolbelt"]


@dataclass(frozen=True, slots=True)
class Toolbelt:
    """The registry of server tools and the indexer behind four of them."""

    registry: ToolRegistry
    indexer: Indexer
    indexer_ref: pykka.ActorRef[Any]


@contextmanager
def open_toolbelt(settings: Settings, store: EventStore) -> Iterator[Toolbelt]:
    """Build the registry and start the indexer actor; stop it on exit.

    Args:
        settings: the effective settings (workspace root, data dir, indexer section).
        store: where the indexer records `IndexRebuilt` (the gateway's, or the CLI's own).
    """
    settings.server.data_dir.mkdir(parents=True, exist_ok=True)
    indexer = Indexer(settings.server.workspace_root, settings.server.data_dir / "index.db",
                      settings.indexer)
    ref = IndexerActor.start(indexer, store)
    try:
        registry = ToolRegistry(workspace_tools())
        registry.register_all(indexer_tool_specs(indexer, ref))
        yield Toolbelt(registry, indexer, ref)
    finally:
        ref.stop()
        indexer.close()
