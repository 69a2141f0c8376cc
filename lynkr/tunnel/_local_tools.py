"""The connector's built-in tools: files, search and a guarded shell on the user's machine.

Registered through the tunnel as `local_read_file`, `local_write_file`,
`local_list_dir`, `local_search` (read-only: safe to redeliver) and `local_bash`.
Every path is resolved first (`~`, `..` and symlinks, relative paths against the
first allowed path) and must fall under one of the allowed paths, else the call is
refused with the rule `path.outside_allowed`. `local_bash` is refused by the rules
of `lynkr.tunnel._bash_guard` before anything runs, and runs under the limits of
`lynkr.tunnel._connector_bash`. Answers are capped (`output_cap` bytes of text).

A refusal or a failure is a `ToolOutcome` with `ok=False`, `content={"error": reason}`
and, for a refusal by one of the connector's rules, that rule's name.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from lynkr.tunnel._bash_guard import CommandRules, check_command
from lynkr.tunnel._connector_bash import BashLimits, run_bash
from lynkr.tunnel._protocol import ToolInfo

__all__ = ["LocalToolSettings", "LocalTools", "ToolOutcome", "ToolRefusedError", "confine"]

_SKIP_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv"})
_SEARCH_FILE_CAP = 5 * 1024 * 1024  # bigger files are skipped by local_search


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """A tool's answer before it becomes a `result` message."""

    ok: bool
    content: Any
    rule: str | None = None

    @classmethod
    def refused(cls, rule: str | None, reason: str) -> ToolOutcome:
        """A failure or refusal: `{"error": reason}` with the rule that matched."""
        return cls(ok=False, content={"error": reason}, rule=rule)


class ToolRefusedError(Exception):
    """A tool refused its input: the rule (None for plain bad input) and the reason."""

    def __init__(self, rule: str | None, reason: str) -> None:
        super().__init__(reason)
        self.rule = rule
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LocalToolSettings:
    """What the built-in tools may touch and how much they may answer.

    Attributes:
        roots: the allowed paths, resolved; the first is where relative paths start.
        bash: the limits of `local_bash`.
        deny: the user's `--deny-command` regexes.
        env: the environment `local_bash` runs with (the connector's own secrets removed).
        output_cap: bytes of text an answer keeps.
    """

    roots: tuple[Path, ...]
    bash: BashLimits = field(default_factory=BashLimits)
    deny: tuple[re.Pattern[str], ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    output_cap: int = 200_000


def confine(raw: object, roots: tuple[Path, ...]) -> Path:
    """`raw` resolved (`~`, `..`, symlinks) and checked to fall under one of `roots`.

    Raises:
        ToolRefusedError: `raw` is not a string, or resolves outside every root.
    """
    if not isinstance(raw, str) or not raw:
        raise ToolRefusedError(None, "path must be a non-empty string")
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = roots[0] / path
    resolved = path.resolve(strict=False)
    if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
        allowed = ", ".join(str(r) for r in roots)
        raise ToolRefusedError("path.outside_allowed",
                            f"{raw} resolves to {resolved}, outside the allowed paths "
                            f"({allowed})")
    return resolved


def _cap(text: str, cap: int) -> tuple[str, bool]:
    data = text.encode()
    if len(data) <= cap:
        return text, False
    return data[:cap].decode(errors="ignore"), True


def _int(inputs: Mapping[str, Any], name: str, default: int) -> int:
    value = inputs.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ToolRefusedError(None, f"{name} must be a non-negative integer")
    return value


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required,
            "additionalProperties": False}


_PATH = {"type": "string", "description": "a path under an allowed path (relative paths "
                                          "start at the first allowed path)"}


class LocalTools:
    """The built-in tools of one connector (see module docstring)."""

    def __init__(self, settings: LocalToolSettings) -> None:
        if not settings.roots:
            raise ValueError("at least one allowed path is needed")
        self.settings = settings
        read_only = {"local_read_file", "local_list_dir", "local_search"}
        self._handlers: dict[str, Callable[[Mapping[str, Any]], Any]] = {
            "local_read_file": self._read_file, "local_write_file": self._write_file,
            "local_list_dir": self._list_dir, "local_search": self._search,
        }
        self.infos = tuple(ToolInfo(name, description, schema, name in read_only)
                           for name, description, schema in _CATALOGUE)

    async def call(self, name: str, inputs: Mapping[str, Any], *,
                   deadline_s: float | None = None) -> ToolOutcome:
        """Run the tool `name`; refusals and failures are outcomes, never exceptions.

        Args:
            name: the registered name (`local_…`).
            inputs: the tool's input.
            deadline_s: seconds the caller still waits; `local_bash` kills its command
                by then even when its own timeout is longer.
        """
        try:
            if name == "local_bash":
                return await self._bash(inputs, deadline_s)
            handler = self._handlers.get(name)
            if handler is None:
                return ToolOutcome.refused(None, f"unknown tool {name!r}")
            content = await trio.to_thread.run_sync(handler, inputs, abandon_on_cancel=True)
        except ToolRefusedError as exc:
            return ToolOutcome.refused(exc.rule, exc.reason)
        except OSError as exc:
            return ToolOutcome.refused(None, f"{exc.strerror or exc}: "
                                             f"{exc.filename or ''}".rstrip(": "))
        return ToolOutcome(ok=True, content=content)

    # -- files (run in a worker thread) ----------------------------------------------
    def _read_file(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        path = confine(inputs.get("path"), self.settings.roots)
        offset, limit = _int(inputs, "offset", 1), _int(inputs, "limit", 0)
        cap, kept, truncated = self.settings.output_cap, 0, False
        lines: list[str] = []
        with path.open(encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                if number < offset:
                    continue
                if (limit and len(lines) >= limit) or kept + len(line.encode()) > cap:
                    truncated = True
                    break
                lines.append(line)
                kept += len(line.encode())
        return {"path": str(path), "content": "".join(lines), "truncated": truncated}

    def _write_file(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        path = confine(inputs.get("path"), self.settings.roots)
        content = inputs.get("content")
        if not isinstance(content, str):
            raise ToolRefusedError(None, "content must be a string")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a" if inputs.get("append") else "w", encoding="utf-8") as handle:
            handle.write(content)
        return {"path": str(path), "bytes": len(content.encode())}

    def _list_dir(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        base = confine(inputs.get("path", str(self.settings.roots[0])), self.settings.roots)
        limit = _int(inputs, "max_entries", 1000) or 1000
        entries: list[dict[str, Any]] = []
        walker = os.walk(base) if inputs.get("recursive") else [
            (str(base), *_split(base))]
        for directory, dirs, files in walker:
            dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
            for name in [*dirs, *sorted(files)]:
                if len(entries) >= limit:
                    return {"path": str(base), "entries": entries, "truncated": True}
                full = Path(directory, name)
                kind = "symlink" if full.is_symlink() else "dir" if full.is_dir() else "file"
                size = full.lstat().st_size if kind == "file" else None
                entries.append({"path": str(full.relative_to(base)), "type": kind,
                                "size": size})
        return {"path": str(base), "entries": entries, "truncated": False}

    def _search(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        pattern = inputs.get("pattern")
        if not isinstance(pattern, str) or not pattern:
            raise ToolRefusedError(None, "pattern must be a non-empty string")
        flags = re.IGNORECASE if inputs.get("ignore_case") else 0
        try:
            matcher = re.compile(pattern if inputs.get("regex") else re.escape(pattern), flags)
        except re.error as exc:
            raise ToolRefusedError(None, f"invalid regex: {exc}") from exc
        base = confine(inputs.get("path", str(self.settings.roots[0])), self.settings.roots)
        glob = inputs.get("glob")
        limit = _int(inputs, "max_results", 200) or 200
        matches: list[dict[str, Any]] = []
        files = [base] if base.is_file() else _walk_files(base)
        for file in files:
            if isinstance(glob, str) and not fnmatch.fnmatch(file.name, glob):
                continue
            for number, line in _text_lines(file, self.settings.roots):
                if matcher.search(line):
                    matches.append({"path": str(file), "line": number, "text": line[:500]})
                    if len(matches) >= limit:
                        return {"matches": matches, "truncated": True}
        return {"matches": matches, "truncated": False}

    # -- shell ---------------------------------------------------------------------
    async def _bash(self, inputs: Mapping[str, Any], deadline_s: float | None) -> ToolOutcome:
        command = inputs.get("command")
        if not isinstance(command, str) or not command.strip():
            return ToolOutcome.refused(None, "command must be a non-empty string")
        cwd = confine(inputs.get("cwd", str(self.settings.roots[0])), self.settings.roots)
        rules = CommandRules(home=str(Path.home()), roots=tuple(str(r) for r in
                                                                 self.settings.roots),
                             cwd=str(cwd), deny=self.settings.deny)
        refusal = check_command(command, rules)
        if refusal is not None:
            return ToolOutcome.refused(refusal.rule, refusal.reason)
        limits = self.settings.bash
        asked = inputs.get("timeout_s")
        timeout = limits.timeout_s
        if isinstance(asked, int | float) and not isinstance(asked, bool) and asked > 0:
            timeout = min(float(asked), timeout)
        if deadline_s is not None:
            timeout = min(deadline_s, timeout)
        limits = dataclasses.replace(limits, timeout_s=timeout)
        run = await run_bash(command, cwd=str(cwd), env=self.settings.env, limits=limits)
        content: dict[str, Any] = {"exit_code": run.exit_code, "output": run.output,
                                   "truncated": run.truncated}
        if run.timed_out:
            content["error"] = f"timed out after {limits.timeout_s:g} s; the command's " \
                               "process group was killed"
            return ToolOutcome(ok=False, content=content, rule="bash.timeout")
        if run.exit_code != 0:
            content["error"] = f"exit code {run.exit_code}"
            return ToolOutcome(ok=False, content=content)
        return ToolOutcome(ok=True, content=content)


def _split(base: Path) -> tuple[list[str], list[str]]:
    dirs: list[str] = []
    files: list[str] = []
    for entry in os.scandir(base):
        (dirs if entry.is_dir(follow_symlinks=False) else files).append(entry.name)
    return dirs, files


def _walk_files(base: Path) -> list[Path]:
    found = []
    for directory, dirs, files in os.walk(base):  # symlinked directories are not followed
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        found += [Path(directory, name) for name in sorted(files)]
    return found


def _text_lines(file: Path, roots: tuple[Path, ...]) -> list[tuple[int, str]]:
    """The lines of a text file under `roots`; binaries, big files and escapes are skipped."""
    try:
        real = confine(str(file), roots)
        if real.stat().st_size > _SEARCH_FILE_CAP:
            return []
        data = real.read_bytes()
    except (ToolRefusedError, OSError):
        return []
    if b"\0" in data[:8192]:
        return []
    return list(enumerate(data.decode(errors="replace").splitlines(), start=1))


_CATALOGUE: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("local_read_file", "Read a text file on the user's machine (under the allowed paths).",
     _schema({"path": _PATH,
              "offset": {"type": "integer", "minimum": 1, "description": "first line (1)"},
              "limit": {"type": "integer", "minimum": 1, "description": "lines to read"}},
             ["path"])),
    ("local_write_file", "Write (or append to) a text file on the user's machine.",
     _schema({"path": _PATH, "content": {"type": "string"},
              "append": {"type": "boolean", "default": False}}, ["path", "content"])),
    ("local_list_dir", "List a directory on the user's machine.",
     _schema({"path": _PATH, "recursive": {"type": "boolean", "default": False},
              "max_entries": {"type": "integer", "minimum": 1}}, [])),
    ("local_search", "Search text files on the user's machine for a string or a regex.",
     _schema({"pattern": {"type": "string"}, "path": _PATH,
              "regex": {"type": "boolean", "default": False},
              "ignore_case": {"type": "boolean", "default": False},
              "glob": {"type": "string", "description": "file name filter, e.g. *.py"},
              "max_results": {"type": "integer", "minimum": 1}}, ["pattern"])),
    ("local_bash", "Run a shell command on the user's machine (dangerous commands are "
                   "refused; time, CPU, memory and output are limited).",
     _schema({"command": {"type": "string"}, "cwd": _PATH,
              "timeout_s": {"type": "number", "exclusiveMinimum": 0}}, ["command"])),
)
