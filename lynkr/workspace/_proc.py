"""Subprocesses for the toolbelt (git, test commands) as trio tasks with hard time limits.

Each command runs in its own session (process group); at the deadline the whole
group is killed, so a test runner's grandchildren die with it, and `run_command`
returns only once they are gone: SIGKILL is delivered asynchronously, and a
grandchild can still be running (not yet a zombie) after its leader was reaped.
Output is captured up to a byte limit (the tail is kept: that is where test
summaries are).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog
import trio

from lynkr.config import SECRET_NAMES

__all__ = ["ProcessOutcome", "child_env", "run_command"]

log = structlog.get_logger()
_CHUNK = 65536
_GROUP_GONE_LIMIT = 5.0  # seconds to wait for a killed group's members to exit
_SECRET_NAME = re.compile(r"(authorization|api[_-]?key|token|secret|password|passwd|cookie|"
                          r"credential|private[_-]?key)", re.I)


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without Lynkr's secrets or secret-looking variables.

    Test commands run code the model may have written; they must not see API keys.
    """
    env = {k: v for k, v in os.environ.items()
           if k not in SECRET_NAMES and not _SECRET_NAME.search(k)}
    env.update(extra or {})
    return env


@dataclass(frozen=True, slots=True)
class ProcessOutcome:
    """How a command ended."""

    exit_code: int | None  # None when it timed out or could not start
    output: str  # stdout (and stderr, when merged); the tail, when over the limit
    timed_out: bool
    duration_ms: float
    error: str | None = None  # why it could not start
    stderr: str = ""  # stderr, when not merged into `output`

    @property
    def ok(self) -> bool:
        """Exit code 0, in time."""
        return self.exit_code == 0 and not self.timed_out


async def _drain(stream: trio.abc.ReceiveStream, buf: bytearray, limit: int) -> None:
    while chunk := await stream.receive_some(_CHUNK):
        buf.extend(chunk)
        if len(buf) > limit:
            del buf[: len(buf) - limit]


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group has already gone
        os.killpg(pid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    """True while a process of group `pgid` is running (zombies do not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True  # no /proc: every member the signal reaches counts
    with os.scandir(proc) as entries:
        return any(_running_member(entry.name, pgid) for entry in entries
                   if entry.name.isdigit())


def _running_member(pid: str, pgid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False  # it exited while we looked
    return fields[0] not in ("Z", "X") and int(fields[2]) == pgid


async def _wait_group_gone(pgid: int) -> None:
    """Wait (a bounded while) until no process of the killed group `pgid` runs."""
    with trio.move_on_after(_GROUP_GONE_LIMIT):
        while _group_alive(pgid):  # noqa: ASYNC110 - the kernel offers no event for a group
            await trio.sleep(0.005)
        return
    log.warning("command_group_lingers", pgid=pgid, waited_s=_GROUP_GONE_LIMIT)


async def _supervise(proc: trio.Process, timeout_s: float, buf: bytearray, err: bytearray,
                     max_output: int) -> bool:
    """Collect output until the process ends or the deadline passes; True if it timed out."""
    timed_out = False
    try:
        assert proc.stdout is not None
        with trio.move_on_after(timeout_s) as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_drain, proc.stdout, buf, max_output)
                if proc.stderr is not None:
                    nursery.start_soon(_drain, proc.stderr, err, max_output)
                await proc.wait()
                _kill_group(proc.pid)  # leftover children holding the pipe die with it
        timed_out = scope.cancelled_caught
    finally:
        if proc.returncode is None or timed_out:
            _kill_group(proc.pid)
        with trio.CancelScope(shield=True):
            await proc.wait()
            await _wait_group_gone(proc.pid)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    await stream.aclose()
    return timed_out


async def run_command(
    argv: Sequence[str],
    *,
    cwd: Path,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    max_output: int = 200_000,
    merge_stderr: bool = True,
) -> ProcessOutcome:
    """Run `argv` in `cwd`, killing its whole process group after `timeout_s`.

    Without `env`, the child gets `child_env()`: no secrets.

    Returns:
        The outcome; a command that cannot start is an outcome with `error`, not a raise.
    """
    started = time.perf_counter()
    buf, err = bytearray(), bytearray()
    try:
        proc = await trio.lowlevel.open_process(
            list(argv), cwd=cwd, env=child_env() if env is None else dict(env),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
            start_new_session=True)
    except OSError as exc:
        return ProcessOutcome(None, "", False, 0.0, error=f"cannot start {argv[0]}: {exc}")
    timed_out = await _supervise(proc, timeout_s, buf, err, max_output)
    if timed_out:
        log.warning("command_timed_out", command=argv[0], timeout_s=timeout_s)
    return ProcessOutcome(
        None if timed_out else proc.returncode, buf.decode("utf-8", "replace"), timed_out,
        (time.perf_counter() - started) * 1000, stderr=err.decode("utf-8", "replace"))
