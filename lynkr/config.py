"""Settings: one frozen section per area, loaded and validated together at start.

`load_settings()` builds every section from one `Env`; if any setting is wrong it
raises `ConfigError` with one line per problem (the CLI prints them, exit code 2).
Each area owns its section class and `from_env` in its own module; this module only
composes them. `mask()` hides secrets in `lynkr config` output; names listed in
`SECRET_NAMES` never reach logs.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lynkr._env import Env
from lynkr.errors import ConfigError
from lynkr.indexer._settings import IndexerSettings
from lynkr.mcp._settings import McpSettings
from lynkr.providers._settings import ProviderSettings
from lynkr.tools._settings import PolicySettings

__all__ = ["SECRET_NAMES", "ServerSettings", "Settings", "is_loopback", "load_settings", "mask"]

SECRET_NAMES = frozenset({
    "DATABRICKS_API_KEY", "AZURE_ANTHROPIC_API_KEY", "OPENAI_API_KEY",
    "ANTHROPIC_UPSTREAM_API_KEY", "ANTHROPIC_API_KEY", "LYNKR_ADMIN_TOKEN",
})


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSettings:
    """Where the gateway listens and keeps its data."""

    host: str
    port: int
    data_dir: Path
    workspace_root: Path
    log_level: str
    durability: str  # LYNKR_DURABILITY: NORMAL (default) or FULL
    projector: str = "process"  # LYNKR_PROJECTOR: process (default) or thread
    log_format: str = "auto"  # LOG_FORMAT: auto (console on a terminal, else json), console, json
    max_live_sessions: int = 1000  # LYNKR_MAX_LIVE_SESSIONS: beyond it, LRU sessions passivate

    @classmethod
    def from_env(cls, env: Env) -> ServerSettings:
        """Read HOST, PORT, LYNKR_DATA_DIR, WORKSPACE_ROOT, LOG_LEVEL, LOG_FORMAT,
        LYNKR_DURABILITY, LYNKR_PROJECTOR, LYNKR_MAX_LIVE_SESSIONS."""
        port = env.int("PORT", 8080, minimum=0)
        if port > 65535:
            env.problems.append(f"PORT: {port} is above 65535")
        return cls(
            host=_host(env),
            port=port,
            data_dir=env.path("LYNKR_DATA_DIR", "data"),
            workspace_root=env.path("WORKSPACE_ROOT", env.cwd).resolve(),
            log_level=env.choice("LOG_LEVEL", "info",
                                 ("debug", "info", "warning", "error", "critical")),
            durability=env.choice("LYNKR_DURABILITY", "normal", ("normal", "full")).upper(),
            projector=env.choice("LYNKR_PROJECTOR", "process", ("process", "thread")),
            log_format=env.choice("LOG_FORMAT", "auto", ("auto", "console", "json")),
            max_live_sessions=env.int("LYNKR_MAX_LIVE_SESSIONS", 1000, minimum=1),
        )


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host(env: Env) -> str:
    """HOST, which must be a loopback address until API keys / JWT exist."""
    host = env.str("HOST", "127.0.0.1") or "127.0.0.1"
    if not is_loopback(host):
        env.problems.append(
            f"HOST: {host!r} is not a loopback address; binding it needs API keys or JWT, "
            "which are not configured (Lynkr can run tools on this machine). Use "
            "HOST=127.0.0.1 (with Docker: --network host)")
    return host


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Every section of the effective configuration."""

    server: ServerSettings
    providers: ProviderSettings = field(default_factory=ProviderSettings.unconfigured)
    policy: PolicySettings = field(default_factory=PolicySettings.defaults)
    indexer: IndexerSettings = field(default_factory=IndexerSettings)
    mcp: McpSettings = field(default_factory=McpSettings)

    @property
    def db_path(self) -> Path:
        """The event log: `$LYNKR_DATA_DIR/lynkr.db`."""
        return self.server.data_dir / "lynkr.db"


def load_settings(
    environ: Mapping[str, str] | None = None, cwd: str | os.PathLike[str] | None = None
) -> Settings:
    """Load and validate every section.

    Raises:
        ConfigError: with one line per problem found.
    """
    env = Env(environ, cwd)
    settings = Settings(server=ServerSettings.from_env(env),
                        providers=ProviderSettings.from_env(env),
                        policy=PolicySettings.from_env(env),
                        indexer=IndexerSettings.from_env(env),
                        mcp=McpSettings.from_env(env))
    if env.problems:
        raise ConfigError(env.problems)
    return settings


def mask(name: str, value: str | None) -> str | None:
    """A value fit to print: secrets show only their last 4 characters."""
    if value is None or name not in SECRET_NAMES:
        return value
    return "****" + value[-4:] if len(value) > 8 else "****"
