"""`StdioTransport`: an MCP server subprocess spoken to over stdin/stdout, under trio.

An `mcp.client.Transport` (the SDK's `Client` accepts it) that, unlike the SDK's
own `stdio_client`, exposes what supervision needs: the pid, the exit code, a tail
of stderr (every stderr line is also logged as `mcp_server_stderr`), and
configurable shutdown: close stdin, wait `grace` seconds, SIGTERM the process
group, wait `term_timeout`, then SIGKILL it. The process starts in its own session
so the whole group can be signalled and nothing is left behind.

`start_problem` says, before anything is spawned or recorded, why a command could
not start (the same sentence a failed spawn raises), so an attach can refuse it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
import mcp_types
import structlog
import trio
from mcp.shared.message import SessionMessage

__all__ = ["StdioTransport", "start_problem"]

log = structlog.get_logger()

_TAIL_LINES = 40
_LINE_LIMIT = 4 * 1024 * 1024  # one JSON-RPC message per line; refuse absurd lines


class StdioTransport:
    """One server process and the message streams the SDK session reads and writes."""

    def __init__(
        self, argv: Sequence[str], *, env: Mapping[str, str], cwd: str | None = None,
        server: str = "", grace: float = 2.0, term_timeout: float = 2.0,
    ) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.cwd = cwd
        self.server = server
        self.grace = grace
        self.term_timeout = term_timeout
        self.process: trio.Process | None = None
        self.exited = trio.Event()  # set once stdout hit EOF and the process was reaped
        self._tail: deque[str] = deque(maxlen=_TAIL_LINES)
        self._cm: Any = None

    @property
    def pid(self) -> int | None:
        """The process id (None before start)."""
        return self.process.pid if self.process else None

    @property
    def returncode(self) -> int | None:
        """The exit code (negative: killed by that signal), None while it runs."""
        return self.process.returncode if self.process else None

    def stderr_tail(self) -> str:
        """The last lines the server wrote to stderr."""
        return "\n".join(self._tail)

    async def __aenter__(self) -> tuple[Any, Any]:
        self._cm = self._open()
        return await self._cm.__aenter__()  # type: ignore[no-any-return]

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return await self._cm.__aexit__(exc_type, exc, tb)  # type: ignore[no-any-return]

    @asynccontextmanager
    async def _open(self) -> AsyncIterator[tuple[Any, Any]]:
        try:
            self.process = await trio.lowlevel.open_process(
                self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, env=self.env, cwd=self.cwd, start_new_session=True)
        except OSError as exc:
            raise OSError(_cannot_start(self.argv[0], exc.strerror or str(exc))) from exc
        read_send, read_recv = anyio.create_memory_object_stream[SessionMessage | Exception](16)
        write_send, write_recv = anyio.create_memory_object_stream[SessionMessage](16)
        log.info("mcp_process_started", server=self.server, pid=self.process.pid)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._read_stdout, read_send)
            nursery.start_soon(self._write_stdin, write_recv)
            nursery.start_soon(self._read_stderr)
            try:
                yield read_recv, write_send
            finally:
                with trio.CancelScope(shield=True):
                    await self.stop()
                    for stream in (read_send, read_recv, write_send, write_recv):
                        await stream.aclose()
                nursery.cancel_scope.cancel()

    async def _read_stdout(self, sink: Any) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        buffer = b""
        try:
            async with sink:
                async for chunk in self.process.stdout:
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    if len(buffer) > _LINE_LIMIT:
                        await sink.send(ValueError("MCP server sent a line over 4 MB"))
                        buffer = b""
                    for line in lines:
                        if line.strip():
                            await sink.send(_parse(line))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, trio.ClosedResourceError):
            pass  # our own shutdown closed the session side
        finally:
            with trio.CancelScope(shield=True):
                await self._reap()

    async def _reap(self) -> None:
        assert self.process is not None
        await self.process.wait()
        self.exited.set()

    async def _write_stdin(self, source: Any) -> None:
        assert self.process is not None
        assert self.process.stdin is not None
        try:
            async with source:
                async for message in source:
                    data = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                    await self.process.stdin.send_all(data.encode() + b"\n")
        except (trio.BrokenResourceError, trio.ClosedResourceError, anyio.ClosedResourceError,
                OSError):
            pass  # the process is gone; the reader's EOF ends the session

    async def _read_stderr(self) -> None:
        assert self.process is not None
        assert self.process.stderr is not None
        buffer = b""
        try:
            async for chunk in self.process.stderr:
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    text = line.decode(errors="replace").rstrip()[:2000]
                    self._tail.append(text)
                    log.info("mcp_server_stderr", server=self.server, line=text)
                buffer = buffer[-8192:]
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass
        if buffer.strip():
            self._tail.append(buffer.decode(errors="replace").rstrip())

    async def stop(self) -> None:
        """Close stdin, then SIGTERM the group after `grace`, then SIGKILL after `term_timeout`."""
        process = self.process
        if process is None:
            return
        if process.stdin is not None:
            await _quietly_close(process.stdin)
        for sig, wait in ((None, self.grace), (signal.SIGTERM, self.term_timeout),
                          (signal.SIGKILL, 5.0)):
            if sig is not None and process.returncode is None:
                _signal_group(process.pid, sig)
                log.info("mcp_process_signalled", server=self.server, pid=process.pid,
                         signal=sig.name)
            with trio.move_on_after(wait):
                await process.wait()
            if process.returncode is not None:
                break
        _signal_group(process.pid, signal.SIGKILL)  # stragglers that left the leader behind
        log.info("mcp_process_stopped", server=self.server, pid=process.pid,
                 exit_code=process.returncode)


def _cannot_start(program: str, why: str) -> str:
    return f"cannot start {program!r}: {why}"


def start_problem(argv: Sequence[str], *, env: Mapping[str, str], cwd: str | None) -> str | None:
    """Why exec would refuse `argv[0]`, in the words a failed spawn uses; None if it can start.

    A name without a slash is looked up on `env`'s PATH (as the spawn does); a path
    (relative to `cwd`) must be an executable file. An interpreter missing behind a
    `#!` line is not caught here: that spawn fails, and the supervisor gives up at once.
    """
    program = argv[0] if argv else ""
    if "/" not in program:
        found = shutil.which(program, path=env.get("PATH", os.defpath)) if program else None
        return None if found else _cannot_start(program, os.strerror(errno.ENOENT))
    path = Path(cwd or ".") / program
    if not path.exists():
        return _cannot_start(program, os.strerror(errno.ENOENT))
    if path.is_dir() or not os.access(path, os.X_OK):
        return _cannot_start(program, os.strerror(errno.EACCES))
    return None


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
        os.killpg(pid, sig)


async def _quietly_close(stream: Any) -> None:
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        await stream.aclose()


def _parse(line: bytes) -> SessionMessage | Exception:
    try:
        message = mcp_types.jsonrpc_message_adapter.validate_json(line, by_name=False)
    except ValueError as exc:
        snippet = line[:200].decode(errors="replace")
        log.warning("mcp_bad_message", snippet=snippet, error=str(exc)[:200])
        return ValueError(f"not a JSON-RPC message: {json.dumps(snippet)}")
    return SessionMessage(message)
