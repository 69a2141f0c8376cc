"""Manifest discovery and validation: the `.mcp.json` format Claude Code users already have.

```json
{"mcpServers": {
    "time": {"command": "mcp-server-time", "args": ["--local-timezone", "UTC"],
             "env": {"TZ": "UTC"}},
    "docs": {"type": "http", "url": "http://127.0.0.1:9000/mcp"}}}
```

A stdio entry has `command` (string), optional `args` (strings), `env` (string
values) and `cwd`; `type` may be omitted or `"stdio"`. An HTTP entry has
`type: "http"` (or `"streamable-http"`) and an http(s) `url`. Sources, in order:
MCP_SERVER_MANIFEST, then every `*.json` file (sorted) in each MCP_MANIFEST_DIRS
directory. An invalid file or entry is reported (`ManifestProblem`: file and reason)
and skipped; everything else still loads. A name seen twice keeps the first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from actors import McpServerSpec

__all__ = [
    "ManifestLoad",
    "ManifestProblem",
    "discover_manifests",
    "parse_manifest",
    "parse_server",
    "validate_name",
]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")


@dataclass(frozen=True, slots=True)
class ManifestProblem:
    """Why a manifest (or one of its entries) was skipped."""

    source: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ManifestLoad:
    """The servers found and the problems met."""

    specs: tuple[McpServerSpec, ...] = ()
    problems: tuple[ManifestProblem, ...] = field(default_factory=tuple)


def validate_name(name: object) -> str | None:
    """Why `name` cannot name a server (None if it can)."""
    if not isinstance(name, str) or not _NAME.match(name):
        return (f"server name {name!r} must be 1-64 characters of letters, digits, '_', '.' "
                "or '-', starting with a letter or digit")
    return None


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what} must be a list of strings")
    return tuple(value)


def _env(value: Any) -> Mapping[str, str]:
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError("env must be an object of string values")
    return MappingProxyType(dict(value))


def parse_server(name: str, entry: Any, source: str) -> McpServerSpec:
    """One `mcpServers` entry as a spec.

    Raises:
        ValueError: with the reason the entry is invalid.
    """
    if (why := validate_name(name)) is not None:
        raise ValueError(why)
    if not isinstance(entry, dict):
        raise ValueError(f"server {name!r}: the entry must be an object")  # noqa: TRY004 - one error type for every invalid entry
    kind = entry.get("type", "http" if "url" in entry and "command" not in entry else "stdio")
    if kind in ("http", "streamable-http", "streamableHttp"):
        url = entry.get("url")
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"server {name!r}: url must be an http(s) URL, got {url!r}")
        return McpServerSpec(name=name, transport="http", url=url, source=source)
    if kind != "stdio":
        raise ValueError(f"server {name!r}: type {kind!r} is not supported "
                         "(use stdio or http)")
    command = entry.get("command")
    if not isinstance(command, str) or not command.strip():
        raise ValueError(f"server {name!r}: command must be a non-empty string")
    try:
        args = _strings(entry.get("args", []), "args")
        env = _env(entry.get("env", {}))
    except ValueError as exc:
        raise ValueError(f"server {name!r}: {exc}") from None
    cwd = entry.get("cwd")
    if cwd is not None and not isinstance(cwd, str):
        raise ValueError(f"server {name!r}: cwd must be a string")
    return McpServerSpec(name=name, transport="stdio", command=(command, *args), env=env,
                         cwd=cwd, source=source)


def parse_manifest(data: Any, source: str) -> ManifestLoad:
    """Every valid server of one decoded manifest; invalid entries become problems."""
    if not isinstance(data, dict) or not isinstance(data.get("mcpServers"), dict):
        return ManifestLoad(problems=(ManifestProblem(
            source, 'not a manifest: expected {"mcpServers": {name: {...}}}'),))
    specs, problems = [], []
    for name, entry in data["mcpServers"].items():
        try:
            specs.append(parse_server(name, entry, source))
        except ValueError as exc:
            problems.append(ManifestProblem(source, str(exc)))
    return ManifestLoad(tuple(specs), tuple(problems))


def _read(path: Path) -> ManifestLoad:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        return ManifestLoad(problems=(ManifestProblem(str(path), exc.strerror or str(exc)),))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return ManifestLoad(problems=(ManifestProblem(str(path), f"invalid JSON: {exc}"),))
    return parse_manifest(data, str(path))


def discover_manifests(manifest: Path | None, dirs: Iterable[Path]) -> ManifestLoad:
    """Load MCP_SERVER_MANIFEST and every `*.json` in the manifest directories."""
    files = [manifest] if manifest is not None else []
    for directory in dirs:
        if directory.is_dir():
            files += sorted(directory.glob("*.json"))
    specs: dict[str, McpServerSpec] = {}
    problems: list[ManifestProblem] = []
    for path in files:
        loaded = _read(path)
        problems += loaded.problems
        for spec in loaded.specs:
            if spec.name in specs:
                problems.append(ManifestProblem(str(path), f"server {spec.name!r} is already "
                                                f"defined in {specs[spec.name].source}"))
                continue
            specs[spec.name] = spec
    return ManifestLoad(tuple(specs.values()), tuple(problems))
