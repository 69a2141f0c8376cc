"""Lynkr: the application — HTTP API, CLI, settings, providers, tools, MCP, indexer.

The version lives in one place, the package metadata (pyproject's `version`); read
it with `lynkr._version.lynkr_version()` (`lynkr --version`, `/health`).
"""

from __future__ import annotations

__all__: list[str] = []
