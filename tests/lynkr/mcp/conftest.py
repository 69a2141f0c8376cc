"""Fixtures for the MCP tests: a real event store, fast settings, the crashy server."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import trio

from actors import EventStore, McpServerSpec
from lynkr.mcp import McpRuntime, McpSettings, RestartSettings, open_mcp

CRASHY = Path(__file__).with_name("crashy_server.py")


def fast_settings(**changes: object) -> McpSettings:
    """Settings with backoff and timeouts in tens of milliseconds."""
    base = McpSettings(
        manifest_dirs=(), request_timeout=10.0, start_timeout=15.0, shutdown_grace=0.5,
        term_timeout=0.5,
        restart=RestartSettings(base_delay=0.02, factor=2.0, max_delay=0.2, max_restarts=3,
                              window=30.0))
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def crashy_spec(name: str = "crashy", *extra: str) -> McpServerSpec:
    """The crashy test server as a stdio spec."""
    return McpServerSpec(name=name, transport="stdio",
                         command=(sys.executable, str(CRASHY), *extra))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    """A real SQLite event store in tmp_path."""
    handle = EventStore.open(tmp_path / "lynkr.db")
    yield handle
    handle.stop()


@pytest.fixture
async def runtime(store: EventStore, tmp_path: Path) -> AsyncIterator[McpRuntime]:
    """A running MCP runtime with fast settings and no manifests."""
    async with open_mcp(fast_settings(), store, workspace=tmp_path) as rt:
        yield rt


async def wait_for(predicate: Callable[[], bool], seconds: float = 20.0) -> None:
    """Poll `predicate` until it holds; fail the test after `seconds`."""
    with trio.fail_after(seconds):
        while not predicate():  # noqa: ASYNC110 - the state lives in actors; polling is the test's view
            await trio.sleep(0.02)


def process_alive(pid: int) -> bool:
    """True if `pid` is in the process table and not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def descendants_of(pid: int) -> list[int]:
    """Every live process whose parent chain reaches `pid`."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        children = [p for p, parent in parents.items() if parent == current]
        found += children
        frontier += children
    return [p for p in found if process_alive(p)]


def servers_under(pid: int) -> list[int]:
    """`descendants_of(pid)` but for the gateway's projection worker (`lynkr.projector`)."""
    found = []
    for child in descendants_of(pid):
        try:
            argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"lynkr.projector" not in argv:
            found.append(child)
    return found
