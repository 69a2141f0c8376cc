"""`StdioTransport` shutdown: close stdin, then SIGTERM, then SIGKILL, whole process group."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import trio

from lynkr.mcp import StdioTransport
from tests.lynkr.mcp.conftest import process_alive, wait_for

EXITS_ON_EOF = "import sys; sys.stdin.read()"
EXITS_ON_TERM = "import sys, time; sys.stdin.close(); time.sleep(60)"
IGNORES_ALL = ("import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
               "sys.stdin.close(); print('ready', flush=True); time.sleep(60)")


def transport(code: str, **kwargs: float) -> StdioTransport:
    return StdioTransport([sys.executable, "-c", code], env=dict(os.environ), server="t",
                          grace=kwargs.get("grace", 0.3), term_timeout=kwargs.get("term", 0.3))


async def test_closing_stdin_is_enough_for_a_polite_server() -> None:
    """A server that exits when stdin closes is never signalled: exit code 0."""
    stdio = transport(EXITS_ON_EOF)
    async with stdio:
        pass
    assert stdio.returncode == 0


async def test_sigterm_follows_when_stdin_is_ignored() -> None:
    """A server that ignores stdin's end gets SIGTERM after the grace period."""
    stdio = transport(EXITS_ON_TERM)
    async with stdio:
        await trio.sleep(0.2)
    assert stdio.returncode == -15


async def test_sigkill_ends_a_server_that_ignores_sigterm() -> None:
    """A server ignoring SIGTERM is SIGKILLed after the TERM timeout."""
    stdio = transport(IGNORES_ALL)
    started = trio.current_time()
    async with stdio as (read, _):
        with trio.fail_after(20):
            await read.receive()  # "ready": SIGTERM is ignored from here on
    assert stdio.returncode == -9
    assert trio.current_time() - started >= 0.6


async def test_grandchildren_are_killed_with_the_group(tmp_path: Path) -> None:
    """A process the server spawned is stopped with it (no orphan in the process table)."""
    pid_file = tmp_path / "child.pid"
    code = ("import subprocess, sys, time; "
            "p = subprocess.Popen(['sleep', '60']); "
            f"open({str(pid_file)!r}, 'w').write(str(p.pid)); sys.stdin.read()")
    stdio = transport(code)
    async with stdio:
        await wait_for(lambda: pid_file.exists() and bool(pid_file.read_text()))
    child = int(pid_file.read_text())
    await wait_for(lambda: not process_alive(child), 5)


async def test_stderr_is_kept_as_a_tail() -> None:
    """What the server writes to stderr is kept (and logged) for the exit event."""
    stdio = transport("import sys; print('first', file=sys.stderr); "
                      "print('second', file=sys.stderr); sys.stdin.read()")
    async with stdio:
        await wait_for(lambda: "second" in stdio.stderr_tail())
    assert stdio.stderr_tail().splitlines()[-2:] == ["first", "second"]


async def test_missing_command_is_a_clear_oserror() -> None:
    """A command that cannot start raises OSError naming it."""
    stdio = StdioTransport(["/nonexistent/mcp-server"], env={}, server="t")
    with pytest.raises(OSError, match="/nonexistent/mcp-server"):
        async with stdio:
            pass
