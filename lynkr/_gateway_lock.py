"""The gateway lock: one gateway per data directory, because one process writes its log.

`hold_gateway_lock(data_dir)` takes an exclusive `flock` on `data_dir/gateway.lock`
for as long as the gateway runs and writes the holder's pid into it. A second
gateway on the same directory gets a `StartupError` naming that pid. The lock
belongs to the open file, not to the file's existence: it is released when the
process exits however it exits (`kill -9` included), so a stale file never blocks
a restart. The descriptor is not inherited by child processes (PEP 446), so a
projector or MCP child that outlives the gateway does not keep the lock.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog

from lynkr.errors import StartupError

__all__ = ["LOCK_NAME", "hold_gateway_lock"]

log = structlog.get_logger()

LOCK_NAME = "gateway.lock"


@contextmanager
def hold_gateway_lock(data_dir: Path) -> Iterator[Path]:
    """Hold the data directory's gateway lock for the `with` block; yield its path.

    Raises:
        StartupError: another process holds the lock, or the directory cannot be used.
    """
    path = data_dir / LOCK_NAME
    fd = _open_lock(path)
    try:
        _acquire(fd, path, data_dir)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        log.debug("gateway_lock_held", path=str(path))
        yield path
    finally:
        os.close(fd)  # closing the only descriptor releases the lock


def _open_lock(path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StartupError(f"cannot use data directory {path.parent}: "
                           f"{exc.strerror or exc}; set LYNKR_DATA_DIR or pass "
                           "--data-dir") from exc


def _acquire(fd: int, path: Path, data_dir: Path) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(path)
        raise StartupError(
            f"another gateway{holder} is using data directory {data_dir} (one gateway per "
            "event log); stop it, or set LYNKR_DATA_DIR or pass --data-dir") from None


def _holder(path: Path) -> str:
    """' (pid N)' from the lock file, or '' if it cannot be read."""
    try:
        pid = path.read_text().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""
