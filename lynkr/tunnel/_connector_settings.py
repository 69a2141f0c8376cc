"""`lynkr connect`'s settings: flags, `LYNKR_CONNECT_*` variables and a TOML file.

Precedence, highest first: command-line flags, then the environment
(`LYNKR_CONNECT_URL`, `…_USER_ID`, `…_API_KEY`, `…_ALLOWED_PATHS`, `…_MCP_MANIFEST`,
`…_TRANSPORT`, `…_BASH_TIMEOUT`, `…_BASH_CPU_SECONDS`, `…_BASH_MEMORY_MB`,
`…_DENY_COMMANDS`, `…_OUTPUT_CAP`, `…_RECONNECT_MAX`), then the config file
(`--config FILE`, else `LYNKR_CONNECT_CONFIG`, else `$XDG_CONFIG_HOME/lynkr/connect.toml`,
i.e. `~/.config/lynkr/connect.toml`, when it exists), then the defaults. The file uses
the flag names with `_` (`user_id = "ann"`, `allowed_paths = ["/home/ann/proj"]`,
`deny_commands = ["git push --force"]`). Deny rules are the exception: they add up
from every source, so no source can remove another's. Allowed paths are separated by
commas (flag and variable); deny rules in the variable by newlines.

Every problem is reported at once (`ConfigError`, one line each).
"""

from __future__ import annotations

import random
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from lynkr.errors import ConfigError

__all__ = ["ENV_PREFIX", "Backoff", "ConnectSettings", "default_config_path",
           "load_connect_settings"]

ENV_PREFIX = "LYNKR_CONNECT_"
_TRANSPORTS = ("auto", "ws", "poll")
_FIELDS = ("url", "user_id", "api_key", "allowed_paths", "mcp_manifest", "transport",
           "bash_timeout", "bash_cpu_seconds", "bash_memory_mb", "output_cap",
           "reconnect_max")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped, jittered exponential delays: `base_s * 2**n`, at most `max_s`, times 0.5-1."""

    base_s: float = 0.5
    max_s: float = 30.0

    def delay(self, attempt: int) -> float:
        """The wait before retry number `attempt` (0-based)."""
        jitter = random.uniform(0.5, 1.0)  # spreads reconnects; not a secret
        return float(min(self.max_s, self.base_s * 2.0 ** min(attempt, 30)) * jitter)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectSettings:
    """Everything `lynkr connect` needs (see module docstring for where each comes from)."""

    url: str
    user_id: str
    api_key: str = field(repr=False)
    allowed_paths: tuple[Path, ...]
    mcp_manifest: Path | None = None
    transport: Literal["auto", "ws", "poll"] = "auto"
    bash_timeout: float = 30.0
    bash_cpu_seconds: int = 60
    bash_memory_mb: int = 2048
    deny_commands: tuple[re.Pattern[str], ...] = ()
    output_cap: int = 200_000
    reconnect: Backoff = field(default_factory=Backoff)
    ping_interval: float = 15.0
    shutdown_grace: float = 30.0  # how long a running call may finish after SIGTERM


def default_config_path(env: Mapping[str, str]) -> Path:
    """`$XDG_CONFIG_HOME/lynkr/connect.toml` (`~/.config/lynkr/connect.toml`)."""
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")) / ".config")
    return Path(base).expanduser() / "lynkr" / "connect.toml"


def _read_file(path: Path, explicit: bool, problems: list[str]) -> dict[str, Any]:
    if not path.is_file():
        if explicit:
            problems.append(f"config file {path}: not found")
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        problems.append(f"config file {path}: {exc}")
        return {}
    unknown = sorted(set(data) - {*_FIELDS, "deny_commands"})
    if unknown:
        problems.append(f"config file {path}: unknown keys {', '.join(unknown)}")
    return data


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name in _FIELDS:
        value = env.get(ENV_PREFIX + name.upper())
        if value:
            found[name] = value
    return found


def _paths(value: Any, problems: list[str]) -> tuple[Path, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        problems.append("allowed_paths: a comma-separated string or a list of paths")
        return ()
    roots = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        path = Path(item).expanduser().resolve()
        if not path.is_dir():
            problems.append(f"allowed_paths: {item} is not a directory")
        roots.append(path)
    if not roots and not any("allowed_paths" in p for p in problems):
        problems.append("allowed_paths: give at least one directory (--allowed-paths)")
    return tuple(roots)


def _number(merged: Mapping[str, Any], name: str, default: float, problems: list[str],
            kind: type[float] | type[int] = float) -> Any:
    value = merged.get(name, default)
    try:
        number = kind(value)
    except (TypeError, ValueError):
        problems.append(f"{name}: expected a positive number, got {value!r}")
        return default
    if number <= 0:
        problems.append(f"{name}: expected a positive number, got {value!r}")
        return default
    return number


def _deny(sources: list[Any], problems: list[str]) -> tuple[re.Pattern[str], ...]:
    patterns = []
    for source in sources:
        items = source.splitlines() if isinstance(source, str) else source
        for item in items or ():
            if not isinstance(item, str) or not item.strip():
                continue
            try:
                patterns.append(re.compile(item))
            except re.error as exc:
                problems.append(f"deny_commands: {item!r} is not a regex: {exc}")
    return tuple(patterns)


def load_connect_settings(flags: Mapping[str, Any], env: Mapping[str, str],
                          config: Path | None = None) -> ConnectSettings:
    """The settings from `flags` (None = not given), `env` and the config file.

    Raises:
        ConfigError: one line per missing or invalid setting.
    """
    problems: list[str] = []
    explicit = config is not None or bool(env.get(ENV_PREFIX + "CONFIG"))
    path = config or Path(env.get(ENV_PREFIX + "CONFIG") or default_config_path(env))
    from_file = _read_file(path, explicit, problems)
    given = {k: v for k, v in flags.items() if v is not None and k != "deny_commands"}
    merged = {**from_file, **_from_env(env), **given}
    for name in ("url", "user_id", "api_key"):
        if not isinstance(merged.get(name), str) or not merged[name].strip():
            problems.append(f"{name}: required (--{name.replace('_', '-')} or "
                            f"{ENV_PREFIX}{name.upper()})")
    url = str(merged.get("url") or "").rstrip("/")
    if url and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc):
        problems.append(f"url: expected http(s)://host[:port], got {url!r}")
    transport = merged.get("transport", "auto")
    if transport not in _TRANSPORTS:
        problems.append(f"transport: one of {', '.join(_TRANSPORTS)}, got {transport!r}")
    roots = _paths(merged.get("allowed_paths", ""), problems)
    manifest = merged.get("mcp_manifest")
    if manifest is not None and not Path(str(manifest)).expanduser().is_file():
        problems.append(f"mcp_manifest: {manifest} is not a file")
    deny = _deny([from_file.get("deny_commands"), env.get(ENV_PREFIX + "DENY_COMMANDS"),
                  flags.get("deny_commands")], problems)
    numbers = {
        "bash_timeout": _number(merged, "bash_timeout", 30.0, problems),
        "bash_cpu_seconds": _number(merged, "bash_cpu_seconds", 60, problems, int),
        "bash_memory_mb": _number(merged, "bash_memory_mb", 2048, problems, int),
        "output_cap": _number(merged, "output_cap", 200_000, problems, int),
    }
    reconnect_max = _number(merged, "reconnect_max", 30.0, problems)
    if problems:
        raise ConfigError(problems)
    return ConnectSettings(
        url=url, user_id=str(merged["user_id"]), api_key=str(merged["api_key"]),
        allowed_paths=roots, transport=transport,
        mcp_manifest=Path(str(manifest)).expanduser() if manifest is not None else None,
        deny_commands=deny, reconnect=Backoff(base_s=min(0.5, reconnect_max),
                                              max_s=reconnect_max), **numbers)
