"""Path confinement to WORKSPACE_ROOT: resolve before the check, open without following.

`decide_path` resolves a requested path (symlinks, ``..``, absolute paths) and
decides whether it stays inside the workspace. `open_confined` then opens the
*resolved* path component by component from the workspace root with `O_NOFOLLOW`,
so a symlink swapped in between the check and the use is refused (`ELOOP`) instead
of followed: the check-then-use race is closed by construction.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lynkr.errors import ToolError
from lynkr.tools import Decision

__all__ = ["ConfinedPath", "SymlinkRaceError", "decide_path", "open_confined", "opened_dir"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class SymlinkRaceError(ToolError):
    """A path component turned into a symlink after the confinement check."""


@dataclass(frozen=True, slots=True)
class ConfinedPath:
    """A path inside the workspace: its resolved absolute form and its parts under the root."""

    root: Path
    absolute: Path
    parts: tuple[str, ...]

    @property
    def relative(self) -> str:
        """The path relative to the root, ``"."`` for the root itself."""
        return "/".join(self.parts) or "."


def decide_path(root: Path, raw: str, *, write: bool = False) -> tuple[Decision, ConfinedPath]:
    """Resolve `raw` against `root` and decide if it is confined to the workspace.

    Returns:
        The decision, and the resolved path (meaningful only when allowed).
    """
    fields = {"path": raw}
    empty = ConfinedPath(root, root, ())
    if not raw or "\x00" in raw:
        return Decision.deny("fs", "fs.path.valid", "the path is empty or holds a NUL byte",
                             **fields), empty
    resolved = Path(os.path.realpath(root / raw))  # joins absolute paths as themselves
    if resolved != root and root not in resolved.parents:
        return Decision.deny(
            "fs", "fs.path.confined",
            f"{raw!r} resolves to {resolved}, outside the workspace {root}",
            setting="WORKSPACE_ROOT (set it to a directory that contains the path)",
            resolved=str(resolved), **fields), empty
    confined = ConfinedPath(root, resolved, resolved.relative_to(root).parts)
    if write and confined.parts[:1] == (".git",):
        return Decision.deny("fs", "fs.path.git_dir",
                             "writing inside .git is never allowed (hooks and config run code)",
                             **fields), empty
    return Decision.allow("fs", "fs.path.confined", "the path is inside the workspace",
                          resolved=confined.relative, **fields), confined


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _open_at(name: str, flags: int, dir_fd: int, mode: int = 0o644) -> int:
    try:
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK) or (
                exc.errno == errno.ENOTDIR and _is_link(name, dir_fd)):
            raise SymlinkRaceError(
                f"{name!r} became a symbolic link after the path was checked; refused") from exc
        raise


def _walk_dirs(path: ConfinedPath, parts: tuple[str, ...], *, create: bool) -> int:
    fd = os.open(path.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts:
            try:
                nxt = _open_at(part, _DIR_FLAGS, fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, 0o755, dir_fd=fd)
                nxt = _open_at(part, _DIR_FLAGS, fd)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_confined(path: ConfinedPath, flags: int, mode: int = 0o644, *,
                  create_dirs: bool = False) -> int:
    """Open `path` with `flags`, refusing any symlink on the way (see module docstring).

    Raises:
        SymlinkRaceError: a component is (now) a symbolic link.
        OSError: the file system refused otherwise (missing file, permissions).
    """
    if not path.parts:
        return os.open(path.root, flags | os.O_CLOEXEC)
    parent = _walk_dirs(path, path.parts[:-1], create=create_dirs)
    try:
        return _open_at(path.parts[-1], flags, parent, mode)
    finally:
        os.close(parent)


@contextmanager
def opened_dir(path: ConfinedPath) -> Iterator[int]:
    """A directory fd for `path`, opened with `open_confined`, closed on exit."""
    fd = open_confined(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield fd
    finally:
        os.close(fd)
