"""File tools confined to WORKSPACE_ROOT: `fs_read`, `fs_write`, `fs_list`, `fs_search`.

Every path is resolved and checked (`decide_path`) by the tool's policy check, and
opened with `open_confined` (no symlink followed) by the handler. Reads and writes
have size limits; binary files are reported, never dumped.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import trio

from lynkr.errors import ToolError, ToolInputError
from lynkr.tools import Decision, PolicyCheck, ToolContext, ToolSpec
from lynkr.workspace._paths import (
    ConfinedPath,
    SymlinkRaceError,
    decide_path,
    open_confined,
    opened_dir,
)

__all__ = ["confined", "fs_tools", "path_check", "run_confined"]

T = TypeVar("T")
_SNIFF = 8192
_SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "__pycache__", ".mypy_cache"})
_MAX_LINE = 300


def path_check(key: str = "path", *, write: bool = False, default: str = ".") -> PolicyCheck:
    """A policy check confining the input path under `key` to the workspace."""

    async def check(ctx: ToolContext, inputs: Mapping[str, Any]) -> Decision:
        decision, _ = decide_path(ctx.workspace_root, str(inputs.get(key, default)), write=write)
        return decision

    return check


async def confined(ctx: ToolContext, raw: str, *, write: bool = False) -> ConfinedPath:
    """`raw` resolved inside the workspace; a deny is recorded and raised."""
    decision, path = decide_path(ctx.workspace_root, raw, write=write)
    if not decision.allowed:
        await ctx.enforce(decision)
    return path


async def run_confined(ctx: ToolContext, path: ConfinedPath, fn: Callable[..., T],
                       *args: Any) -> T:
    """Run blocking file work `fn(*args)` in a thread, mapping OS errors to tool errors."""
    try:
        return await trio.to_thread.run_sync(fn, *args)
    except SymlinkRaceError as exc:
        await ctx.enforce(Decision.deny("fs", "fs.path.no_symlink", exc.message,
                                        path=path.relative))
        raise
    except FileNotFoundError as exc:
        raise ToolError(f"{path.relative}: no such file or directory") from exc
    except IsADirectoryError as exc:
        raise ToolError(f"{path.relative}: is a directory") from exc
    except NotADirectoryError as exc:
        raise ToolError(f"{path.relative}: is not a directory") from exc
    except FileExistsError as exc:
        raise ToolError(f"{path.relative}: already exists") from exc
    except PermissionError as exc:
        raise ToolError(f"{path.relative}: permission denied") from exc


def _decode(data: bytes, truncated: bool) -> str | None:
    if b"\x00" in data[:_SNIFF]:
        return None
    for cut in range(4 if truncated else 1):  # a read limit may split a UTF-8 sequence
        try:
            return data[: len(data) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return None


def _read(path: ConfinedPath, offset: int, limit: int) -> dict[str, Any]:
    fd = open_confined(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise ToolError(f"{path.relative}: not a regular file")
        f.seek(offset)
        data = f.read(limit)
    truncated = offset + len(data) < size
    text = _decode(data, truncated)
    if text is None:
        return {"path": path.relative, "size": size, "binary": True,
                "note": "binary file: content not shown"}
    return {"path": path.relative, "size": size, "offset": offset, "content": text,
            "truncated": truncated}


async def _fs_read(ctx: ToolContext, inputs: Mapping[str, Any]) -> Any:
    path = await confined(ctx, inputs["path"])
    limit = min(int(inputs.get("max_bytes", ctx.settings.fs_max_read_bytes)),
                ctx.settings.fs_max_read_bytes)
    return await run_confined(ctx, path, _read, path, int(inputs.get("offset", 0)), limit)


def _write(path: ConfinedPath, data: bytes, mode: str) -> int:
    flags = os.O_WRONLY | os.O_CREAT | {
        "overwrite": os.O_TRUNC, "append": os.O_APPEND, "create": os.O_EXCL}[mode]
    fd = open_confined(path, flags, create_dirs=True)
    with os.fdopen(fd, "wb") as f:
        return f.write(data)


async def _write_check(ctx: ToolContext, inputs: Mapping[str, Any]) -> Decision:
    decision, _ = decide_path(ctx.workspace_root, inputs["path"], write=True)
    size, limit = len(inputs["content"].encode()), ctx.settings.fs_max_write_bytes
    if decision.allowed and size > limit:
        return Decision.deny("fs", "fs.write.size", f"{size} bytes is over the {limit} limit",
                             setting=f"WORKSPACE_FS_MAX_WRITE_BYTES={size} or more",
                             path=inputs["path"], size=size)
    return decision


async def _fs_write(ctx: ToolContext, inputs: Mapping[str, Any]) -> Any:
    path = await confined(ctx, inputs["path"], write=True)
    data = inputs["content"].encode()
    written = await run_confined(ctx, path, _write, path, data,
                                 inputs.get("mode", "overwrite"))
    return {"path": path.relative, "bytes_written": written}


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "file" if stat.S_ISREG(mode) else "other"


def _walk(path: ConfinedPath, recursive: bool) -> Iterator[tuple[str, str, int]]:
    with opened_dir(path) as fd:
        for top, dirs, files, top_fd in os.fwalk(".", dir_fd=fd, follow_symlinks=False):
            dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS) if recursive else []
            for name in sorted([*dirs, *files]):
                st = os.stat(name, dir_fd=top_fd, follow_symlinks=False)
                yield os.path.normpath(os.path.join(top, name)), _kind(st.st_mode), st.st_size
            if not recursive:
                return


def _list(path: ConfinedPath, recursive: bool, limit: int) -> dict[str, Any]:
    entries: list[dict[str, Any]] = []
    for rel, kind, size in _walk(path, recursive):
        if len(entries) == limit:
            return {"path": path.relative, "entries": entries, "truncated": True}
        entries.append({"path": rel, "type": kind, "size": size})
    return {"path": path.relative, "entries": entries, "truncated": False}


async def _fs_list(ctx: ToolContext, inputs: Mapping[str, Any]) -> Any:
    path = await confined(ctx, inputs.get("path", "."))
    return await run_confined(ctx, path, _list, path, bool(inputs.get("recursive", False)),
                              int(inputs.get("max_entries", 500)))


def _grep_file(name: str, dir_fd: int, pattern: re.Pattern[str], max_bytes: int) -> list[
        tuple[int, str]]:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     dir_fd=dir_fd)
    except OSError:
        return []  # a symlink, a vanished or unreadable file: not searched
    with os.fdopen(fd, "rb") as f:
        data = f.read(max_bytes + 1)
    text = _decode(data, False) if len(data) <= max_bytes else None
    if text is None:
        return []
    return [(n, line.strip()[:_MAX_LINE]) for n, line in enumerate(text.splitlines(), 1)
            if pattern.search(line)]


def _search(path: ConfinedPath, pattern: re.Pattern[str], max_bytes: int,
            limit: int) -> dict[str, Any]:
    matches: list[dict[str, Any]] = []
    with opened_dir(path) as fd:
        for top, dirs, files, top_fd in os.fwalk(".", dir_fd=fd, follow_symlinks=False):
            dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
            for name in sorted(files):
                rel = os.path.normpath(os.path.join(path.relative, top, name))
                for line_no, text in _grep_file(name, top_fd, pattern, max_bytes):
                    if len(matches) == limit:
                        return {"matches": matches, "truncated": True}
                    matches.append({"path": rel, "line": line_no, "text": text})
    return {"matches": matches, "truncated": False}


async def _fs_search(ctx: ToolContext, inputs: Mapping[str, Any]) -> Any:
    path = await confined(ctx, inputs.get("path", "."))
    query = inputs["query"]
    flags = 0 if inputs.get("case_sensitive", True) else re.IGNORECASE
    try:
        pattern = re.compile(query if inputs.get("regex", False) else re.escape(query), flags)
    except re.error as exc:
        raise ToolInputError(f"fs_search: invalid regular expression: {exc}") from exc
    limit = min(int(inputs.get("max_results", ctx.settings.fs_search_max_results)),
                ctx.settings.fs_search_max_results)
    return await run_confined(ctx, path, _search, path, pattern,
                              ctx.settings.fs_max_read_bytes, limit)


def _schema(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required,
            "additionalProperties": False}


_PATH = {"type": "string", "minLength": 1, "description": "path relative to the workspace"}


def fs_tools() -> list[ToolSpec]:
    """The four file tools."""
    return [
        ToolSpec(name="fs_read", policy="fs", check=path_check(), effects=False,
                 description="Read a text file of the workspace (binary files are reported).",
                 input_schema=_schema({"path": _PATH,
                                       "offset": {"type": "integer", "minimum": 0},
                                       "max_bytes": {"type": "integer", "minimum": 1}},
                                      ["path"]), handler=_fs_read),
        ToolSpec(name="fs_write", policy="fs", check=_write_check, read_only=False, effects=True,
                 description="Write a text file inside the workspace.",
                 input_schema=_schema({
                     "path": _PATH, "content": {"type": "string"},
                     "mode": {"enum": ["overwrite", "append", "create"]}},
                     ["path", "content"]), handler=_fs_write),
        ToolSpec(name="fs_list", policy="fs", check=path_check(), effects=False,
                 description="List a directory of the workspace, optionally recursively.",
                 input_schema=_schema({"path": _PATH, "recursive": {"type": "boolean"},
                                       "max_entries": {"type": "integer", "minimum": 1,
                                                       "maximum": 10_000}}, []),
                 handler=_fs_list),
        ToolSpec(name="fs_search", policy="fs", check=path_check(), effects=False,
                 description="Search text (or a regular expression) in workspace files.",
                 input_schema=_schema({"query": {"type": "string", "minLength": 1},
                                       "path": _PATH, "regex": {"type": "boolean"},
                                       "case_sensitive": {"type": "boolean"},
                                       "max_results": {"type": "integer", "minimum": 1}},
                                      ["query"]), handler=_fs_search),
    ]
