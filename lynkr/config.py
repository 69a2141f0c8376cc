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
from typing import Any

from lynkr._env import Env
from lynkr.errors import ConfigError
from lynkr.gateway import AuthSettings, LimitSettings, PriceTable, RoutingSettings
from lynkr.indexer._settings import IndexerSettings
from lynkr.mcp._settings import McpSettings
from lynkr.providers._settings import ProviderSettings
from lynkr.tools._settings import PolicySettings
from lynkr.tunnel._settings import TunnelSettings

__all__ = [
    "GROUPS",
    "SECRET_NAMES",
    "PromptCacheSettings",
    "ServerSettings",
    "ServerToolSettings",
    "Settings",
    "is_loopback",
    "load_settings",
    "mask",
]

SECRET_NAMES = frozenset({
    "DATABRICKS_API_KEY", "AZURE_ANTHROPIC_API_KEY", "OPENAI_API_KEY",
    "ANTHROPIC_UPSTREAM_API_KEY", "ANTHROPIC_API_KEY", "LYNKR_ADMIN_TOKEN",
    "LYNKR_JWT_SECRET",
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
    store_url: str = ""  # LYNKR_STORE_URL: sqlite:///path or postgresql://…; "": lynkr.db
    shutdown_grace: float = 30.0  # LYNKR_SHUTDOWN_GRACE_S: in-flight requests' time to end

    @classmethod
    def from_env(cls, env: Env) -> ServerSettings:
        """Read HOST, PORT, LYNKR_DATA_DIR, WORKSPACE_ROOT, LOG_LEVEL, LOG_FORMAT,
        LYNKR_DURABILITY, LYNKR_PROJECTOR, LYNKR_MAX_LIVE_SESSIONS, LYNKR_STORE_URL,
        LYNKR_SHUTDOWN_GRACE_S."""
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
            store_url=_store_url(env),
            shutdown_grace=max(0.0, env.float("LYNKR_SHUTDOWN_GRACE_S", 30.0)),
        )


def _store_url(env: Env) -> str:
    """`LYNKR_STORE_URL`, if set: a `sqlite:///path` or `postgresql://…` URL."""
    url = (env.str("LYNKR_STORE_URL", "") or "").strip()
    if url and not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        env.problems.append(f"LYNKR_STORE_URL: {url.split('://')[0]!r} is not a store URL; "
                            "use sqlite:///path/lynkr.db or postgresql://user@host/db")
    return url


GROUPS = ("index", "fs", "git", "tests", "tasks", "web", "mcp", "local")
"""The tool groups `LYNKR_SERVER_TOOLS` may name (a tool's group is its policy family)."""

@dataclass(frozen=True, slots=True)
class ServerToolSettings:
    """`LYNKR_SERVER_TOOLS`: the groups and single tools offered to the model."""

    groups: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()

    @property
    def enabled(self) -> bool:
        """False for `off`: no server tool is offered and the loop never runs."""
        return bool(self.groups or self.names)

    @classmethod
    def from_env(cls, env: Env) -> ServerToolSettings:
        """Read `LYNKR_SERVER_TOOLS` (`off` by default)."""
        raw = (env.str("LYNKR_SERVER_TOOLS", "off") or "off").strip()
        return cls.parse(raw, env.problems)

    @classmethod
    def parse(cls, raw: str, problems: list[str] | None = None) -> ServerToolSettings:
        """`off`, `all`, or a comma list of groups and tool names (a bad item is a
        problem appended to `problems`)."""
        items = [item.strip() for item in raw.split(",") if item.strip()]
        if not items or items == ["off"]:
            return cls()
        if "all" in items:
            return cls(groups=frozenset(GROUPS))
        groups, names = set(), set()
        for item in items:
            if item in GROUPS:
                groups.add(item)
            elif item == "off":
                if problems is not None:
                    problems.append("LYNKR_SERVER_TOOLS: 'off' cannot be combined with "
                                    "other items")
            elif item.replace("_", "").replace("-", "").isalnum():
                names.add(item)
            elif problems is not None:
                problems.append(f"LYNKR_SERVER_TOOLS: {item!r} is neither a group "
                                f"({', '.join(GROUPS)}) nor a tool name")
        return cls(groups=frozenset(groups), names=frozenset(names))

    def describe(self) -> str:
        """The setting as `lynkr config` prints it."""
        if not self.enabled:
            return "off"
        if self.groups == frozenset(GROUPS) and not self.names:
            return "all"
        return ",".join([g for g in GROUPS if g in self.groups] + sorted(self.names))

    def selects(self, spec: Any) -> bool:
        """True if `spec` (a `lynkr.tools.ToolSpec`) is offered: its name is listed, or
        its group is enabled."""
        if spec.name in self.names:
            return True
        if "tunnel" in spec.tags:  # a user's own tools, through `lynkr connect`
            return "local" in self.groups
        if spec.policy == "mcp":  # the group is the catalogue's tools, not the generic call
            return "mcp" in self.groups and spec.name.startswith("mcp_")
        return spec.policy in self.groups


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptCacheSettings:
    """The prompt cache (`lynkr/orchestrator/_cache.py`). Kept here rather than beside the
    cache: every CLI command reads the settings, and the orchestrator package is heavy to
    import."""

    enabled: bool = True  # PROMPT_CACHE_ENABLED
    ttl_ms: int = 300_000  # PROMPT_CACHE_TTL_MS: an entry answers this long after it was stored
    max_entries: int = 64  # PROMPT_CACHE_MAX_ENTRIES: beyond it, the least recently used goes
    nondeterministic: bool = False  # PROMPT_CACHE_NONDETERMINISTIC: cache temperature > 0 too

    @classmethod
    def from_env(cls, env: Env) -> PromptCacheSettings:
        """Read PROMPT_CACHE_ENABLED, PROMPT_CACHE_TTL_MS, PROMPT_CACHE_MAX_ENTRIES and
        PROMPT_CACHE_NONDETERMINISTIC."""
        return cls(enabled=env.bool("PROMPT_CACHE_ENABLED", True),
                   ttl_ms=env.int("PROMPT_CACHE_TTL_MS", 300_000, minimum=1),
                   max_entries=env.int("PROMPT_CACHE_MAX_ENTRIES", 64, minimum=1),
                   nondeterministic=env.bool("PROMPT_CACHE_NONDETERMINISTIC", False))


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host(env: Env) -> str:
    """HOST; a non-loopback one needs LYNKR_AUTH on (Lynkr can run tools on this machine).

    LYNKR_AUTH's value is checked by `AuthSettings`; here only "off or not" matters.
    """
    host = env.str("HOST", "127.0.0.1") or "127.0.0.1"
    auth_on = (env.str("LYNKR_AUTH", "off") or "off").strip().lower() != "off"
    if not auth_on and not is_loopback(host):
        env.problems.append(
            f"HOST: {host!r} is not a loopback address and LYNKR_AUTH is off; set "
            "LYNKR_AUTH=keys (or jwt, keys,jwt) to serve other machines, or "
            "HOST=127.0.0.1")
    return host


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Every section of the effective configuration."""

    server: ServerSettings
    providers: ProviderSettings = field(default_factory=ProviderSettings.unconfigured)
    policy: PolicySettings = field(default_factory=PolicySettings.defaults)
    indexer: IndexerSettings = field(default_factory=IndexerSettings)
    mcp: McpSettings = field(default_factory=McpSettings)
    cache: PromptCacheSettings = field(default_factory=PromptCacheSettings)
    server_tools: ServerToolSettings = field(default_factory=ServerToolSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)  # tiers, LYNKR_LIMITS_*
    routing: RoutingSettings = field(default_factory=RoutingSettings)  # ROUTER_*
    prices: PriceTable = field(default_factory=PriceTable)  # lynkr.toml [prices]
    auth: AuthSettings = field(default_factory=AuthSettings)  # LYNKR_AUTH, LYNKR_JWT_*
    tunnel: TunnelSettings = field(default_factory=TunnelSettings)  # LYNKR_TUNNEL_*

    @property
    def db_path(self) -> Path:
        """The event log: `$LYNKR_DATA_DIR/lynkr.db`."""
        return self.server.data_dir / "lynkr.db"

    @property
    def store_url(self) -> str:
        """The event log's URL: `LYNKR_STORE_URL`, else `sqlite:///` + `db_path`."""
        return self.server.store_url or f"sqlite:///{self.db_path}"


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
                        mcp=McpSettings.from_env(env),
                        cache=PromptCacheSettings.from_env(env),
                        server_tools=ServerToolSettings.from_env(env),
                        limits=LimitSettings.from_env(env),
                        routing=RoutingSettings.from_env(env),
                        prices=PriceTable.from_env(env),
                        auth=AuthSettings.from_env(env),
                        tunnel=TunnelSettings.from_env(env))
    if env.problems:
        raise ConfigError(env.problems)
    return settings


def mask(name: str, value: str | None) -> str | None:
    """A value fit to print: secrets show only their last 4 characters."""
    if value is None or name not in SECRET_NAMES:
        return value
    return "****" + value[-4:] if len(value) > 8 else "****"
