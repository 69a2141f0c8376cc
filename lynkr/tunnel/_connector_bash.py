"""Running one `local_bash` command: its own process group, rlimits, a timeout, capped output.

The command runs as `bash -c LINE` (`sh -c` where bash is missing) in a new session,
so the whole group it spawns can be signalled. The child sets its own limits before
exec (`resource.setrlimit` in `preexec_fn`): CPU seconds (`RLIMIT_CPU`) and address
space (`RLIMIT_AS`). stdout and stderr are read together; past `output_cap` bytes the
rest is read and dropped (so the command never blocks on a full pipe) and the answer
says it was truncated. At the timeout, or when the shell itself exits, the group is
sent SIGKILL: a call leaves nothing running behind it.

On Linux the shell also dies with the connector, even a `kill -9` of it: the child asks
the kernel for SIGKILL when its parent goes (`prctl(PR_SET_PDEATHSIG)`). The kernel
sends it when the parent *thread* exits, so the shell is forked from the trio thread
(a blocking `subprocess.Popen`, a few milliseconds) rather than by trio's
`open_process`, whose worker threads exit after 10 s idle and would take the command
with them; its exit is awaited on a pidfd. Where the kernel has no pidfd (before 5.3)
the exit is polled. The shell's own children are not covered, but they are in its
group, which is killed when the shell ends or the call is cancelled; only a kill -9
of the connector while a grandchild runs can leave that grandchild behind. Elsewhere
(macOS) the shell is started by trio and has no parent-death signal.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import trio

__all__ = ["BashLimits", "BashRun", "run_bash"]

_DRAIN_S = 2.0  # how long the output of a finished group may still be read
_POLL_S = 0.05  # how often the exit of a shell without a pidfd is checked
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# Looked up before any fork: a forked child of a threaded process must not dlopen.
_PRCTL: Any = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


@dataclass(frozen=True, slots=True)
class BashLimits:
    """The limits every command runs under.

    Attributes:
        timeout_s: wall-clock seconds before the group is killed.
        cpu_s: CPU seconds (RLIMIT_CPU) of the shell and each child.
        memory_mb: address space (RLIMIT_AS) of each process, in MiB.
        output_cap: bytes of output kept.
    """

    timeout_s: float = 30.0
    cpu_s: int = 60
    memory_mb: int = 2048
    output_cap: int = 200_000


@dataclass(frozen=True, slots=True)
class BashRun:
    """What a command did: exit code (None when killed at the timeout) and its output."""

    exit_code: int | None
    output: str
    truncated: bool
    timed_out: bool


class _Shell(Protocol):
    """What `run_bash` uses of a started shell (`trio.Process` or `_LinuxShell`)."""

    pid: int
    stdout: trio.abc.ReceiveStream | None

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int: ...


class _LinuxShell:
    """A shell forked from the trio thread (see module docstring), awaited on a pidfd."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        assert popen.stdout is not None
        self.popen, self.pid = popen, popen.pid
        self.stdout: trio.abc.ReceiveStream | None = trio.lowlevel.FdStream(
            os.dup(popen.stdout.fileno()))
        popen.stdout.close()
        try:
            self._pidfd: int | None = os.pidfd_open(popen.pid)
        except OSError:  # a kernel before 5.3: the exit is polled
            self._pidfd = None

    @property
    def returncode(self) -> int | None:
        """The exit status once `wait` returned (negative: the signal that ended it)."""
        return self.popen.returncode

    async def wait(self) -> int:
        """Wait for the shell to exit, and reap it.

        Returns:
            Its exit status.
        """
        while self.popen.poll() is None:
            if self._pidfd is None:
                await trio.sleep(_POLL_S)
            else:
                await trio.lowlevel.wait_readable(self._pidfd)
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        return self.popen.returncode


def _limiter(limits: BashLimits) -> Callable[[], None]:
    cpu, memory = limits.cpu_s, limits.memory_mb * 1024 * 1024
    parent = os.getpid()

    def apply() -> None:  # runs in the child, between fork and exec
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        if _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent:  # the connector died before the prctl
                os.kill(os.getpid(), signal.SIGKILL)

    return apply


def _popen(argv: list[str], options: Mapping[str, Any]) -> subprocess.Popen[bytes]:
    # Blocking on purpose: the fork must happen on the long-lived trio thread.
    return subprocess.Popen(argv, **options)


async def _start_shell(command: str, *, cwd: str, env: Mapping[str, str],
                       limits: BashLimits) -> _Shell:
    options: dict[str, Any] = {
        "cwd": cwd, "env": dict(env), "stdin": subprocess.DEVNULL, "stdout": subprocess.PIPE,
        "stderr": subprocess.STDOUT, "start_new_session": True,
        "preexec_fn": _limiter(limits)}
    argv = [_shell(), "-c", command]
    if _PRCTL is None:
        return await trio.lowlevel.open_process(argv, **options)
    await trio.lowlevel.checkpoint()
    return _LinuxShell(_popen(argv, options))


def _shell() -> str:
    return shutil.which("bash") or "/bin/sh"


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
        os.killpg(pid, signal.SIGKILL)


async def run_bash(command: str, *, cwd: str, env: Mapping[str, str],
                   limits: BashLimits) -> BashRun:
    """Run `command` under `limits` (see module docstring).

    Raises:
        OSError: the shell could not be started.
    """
    process = await _start_shell(command, cwd=cwd, env=env, limits=limits)
    chunks: list[bytes] = []
    kept = 0
    truncated = False

    async def read() -> None:
        nonlocal kept, truncated
        assert process.stdout is not None
        async for chunk in process.stdout:
            room = limits.output_cap - kept
            if len(chunk) > room:
                truncated = True
                chunk = chunk[:max(room, 0)]
            chunks.append(bytes(chunk))
            kept += len(chunk)

    timed_out = False
    try:
        async with trio.open_nursery() as nursery:
            read_done = trio.Event()

            async def read_then_signal() -> None:
                await read()
                read_done.set()

            nursery.start_soon(read_then_signal)
            with trio.move_on_after(limits.timeout_s) as scope:
                await process.wait()
            timed_out = scope.cancelled_caught
            # The shell is done (or out of time): whatever it left behind holding the
            # pipe is killed, which also ends the reader at EOF; a process that left
            # the group (setsid) and still holds the pipe is not waited for.
            _kill_group(process.pid)
            with trio.move_on_after(_DRAIN_S):
                await read_done.wait()
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            _kill_group(process.pid)
            await process.wait()
            if process.stdout is not None:
                await process.stdout.aclose()
    output = b"".join(chunks).decode(errors="replace")
    return BashRun(exit_code=None if timed_out else process.returncode, output=output,
                   truncated=truncated, timed_out=timed_out)
