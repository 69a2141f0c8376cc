"""Running one `local_bash` command: its own process group, rlimits, a timeout, capped output.

The command runs as `bash -c LINE` (`sh -c` where bash is missing) in a new session,
so the whole group it spawns can be signalled. The child sets its own limits before
exec (`resource.setrlimit` in `preexec_fn`): CPU seconds (`RLIMIT_CPU`) and address
space (`RLIMIT_AS`). stdout and stderr are read together; past `output_cap` bytes the
rest is read and dropped (so the command never blocks on a full pipe) and the answer
says it was truncated. At the timeout, or when the shell itself exits, the group is
sent SIGKILL: a call leaves nothing running behind it.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import trio

__all__ = ["BashLimits", "BashRun", "run_bash"]

_DRAIN_S = 2.0  # how long the output of a finished group may still be read


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


def _limiter(limits: BashLimits) -> Callable[[], None]:
    cpu, memory = limits.cpu_s, limits.memory_mb * 1024 * 1024

    def apply() -> None:  # runs in the child, between fork and exec
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return apply


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
    process = await trio.lowlevel.open_process(
        [_shell(), "-c", command], cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=_limiter(limits))
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
