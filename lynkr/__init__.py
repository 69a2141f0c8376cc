"""Lynkr: the application — HTTP API, CLI, settings, providers, tools, MCP, indexer."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
