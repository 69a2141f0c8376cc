"""The installed package's version, read once from its metadata (pyproject's `version`)."""

from __future__ import annotations

from functools import cache

__all__ = ["lynkr_version"]


@cache
def lynkr_version() -> str:
    """The `lynkr` distribution's version; `0+unknown` when it is not installed."""
    from importlib.metadata import PackageNotFoundError, version  # ~30 ms: only when asked

    try:
        return version("lynkr")
    except PackageNotFoundError:
        return "0+unknown"
