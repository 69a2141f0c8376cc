"""`McpSettings`: the MCP section of the settings (MCP_*, LYNKR_ADMIN_TOKEN).

| variable | default | meaning |
|---|---|---|
| MCP_SERVER_MANIFEST | — | one manifest file (`.mcp.json` format) |
| MCP_MANIFEST_DIRS | `~/.claude/mcp` | `;`-separated directories of `*.json` manifests |
| MCP_PROTOCOL_MODE | `auto` | `auto` (probe 2026-07-28, fall back to the handshake) or `legacy` |
| MCP_REQUEST_TIMEOUT | 60 | seconds per MCP request (tools/list, tools/call) |
| MCP_START_TIMEOUT | 30 | seconds for the initialization handshake |
| MCP_RESTART_BASE_DELAY / _FACTOR / _MAX_DELAY | 0.5 / 2 / 30 | backoff |
| MCP_MAX_RESTARTS / MCP_RESTART_WINDOW | 5 / 60 | restart limit within the window (s) |
| MCP_SHUTDOWN_GRACE / MCP_TERM_TIMEOUT | 2 / 2 | after closing stdin / after SIGTERM |
| MCP_SANDBOX_ENABLED | false | wrap stdio servers in a sandbox |
| MCP_SANDBOX_RUNTIME | `bwrap` | `bwrap` or `docker` |
| MCP_SANDBOX_IMAGE | — | docker image |
| MCP_SANDBOX_WORKSPACE | `ro` | workspace mount: `ro`, `rw` or `none` |
| MCP_SANDBOX_ALLOW_NETWORK | false | keep the network |
| MCP_SANDBOX_ENV_ALLOW | PATH,HOME,LANG,LC_ALL,TERM,TZ | variables passed from the gateway |
| MCP_SANDBOX_RO_PATHS | — | `;`-separated extra read-only mounts |
| LYNKR_ADMIN_TOKEN | — | bearer token that opens `/admin/mcp` beyond loopback |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lynkr._env import Env
from lynkr.mcp._sandbox import SandboxSettings

__all__ = ["McpSettings", "RestartSettings"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartSettings:
    """MCP_RESTART_* and MCP_MAX_RESTARTS, as the fields of `actors.RestartPolicy`.

    The runtime hands them to the supervisor as that policy; they are a separate
    value here so that reading the settings (every CLI command does) never imports
    the actors.
    """

    base_delay: float = 0.5
    factor: float = 2.0
    max_delay: float = 30.0
    max_restarts: int = 5
    window: float = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class McpSettings:
    """Discovery, client timeouts, supervision and sandbox settings (module docstring)."""

    manifest: Path | None = None
    manifest_dirs: tuple[Path, ...] = ()
    protocol_mode: str = "auto"
    request_timeout: float = 60.0
    start_timeout: float = 30.0
    restart: RestartSettings = field(default_factory=RestartSettings)
    shutdown_grace: float = 2.0
    term_timeout: float = 2.0
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
    admin_token: str | None = None

    @classmethod
    def from_env(cls, env: Env) -> McpSettings:
        """Read the variables in the module docstring; problems go to `env.problems`."""
        manifest = env.str("MCP_SERVER_MANIFEST")
        dirs = env.list("MCP_MANIFEST_DIRS", sep=";") if env.str("MCP_MANIFEST_DIRS") else [
            "~/.claude/mcp"]
        return cls(
            manifest=_path(env, manifest) if manifest else None,
            manifest_dirs=tuple(_path(env, d) for d in dirs),
            protocol_mode=env.choice("MCP_PROTOCOL_MODE", "auto", ("auto", "legacy")),
            request_timeout=env.positive("MCP_REQUEST_TIMEOUT", 60.0),
            start_timeout=env.positive("MCP_START_TIMEOUT", 30.0),
            restart=RestartSettings(
                base_delay=env.positive("MCP_RESTART_BASE_DELAY", 0.5),
                factor=max(1.0, env.positive("MCP_RESTART_FACTOR", 2.0)),
                max_delay=env.positive("MCP_RESTART_MAX_DELAY", 30.0),
                max_restarts=env.int("MCP_MAX_RESTARTS", 5, minimum=0),
                window=env.positive("MCP_RESTART_WINDOW", 60.0)),
            shutdown_grace=env.positive("MCP_SHUTDOWN_GRACE", 2.0),
            term_timeout=env.positive("MCP_TERM_TIMEOUT", 2.0),
            sandbox=_sandbox(env),
            admin_token=env.str("LYNKR_ADMIN_TOKEN"),
        )


def _sandbox(env: Env) -> SandboxSettings:
    allow = env.list("MCP_SANDBOX_ENV_ALLOW")
    return SandboxSettings(
        enabled=env.bool("MCP_SANDBOX_ENABLED", False),
        runtime=env.choice("MCP_SANDBOX_RUNTIME", "bwrap", ("bwrap", "docker")),
        image=env.str("MCP_SANDBOX_IMAGE"),
        workspace=env.choice("MCP_SANDBOX_WORKSPACE", "ro", ("ro", "rw", "none")),
        allow_network=env.bool("MCP_SANDBOX_ALLOW_NETWORK", False),
        env_allow=tuple(allow) if allow else SandboxSettings().env_allow,
        ro_paths=tuple(_path(env, p) for p in env.list("MCP_SANDBOX_RO_PATHS", sep=";")),
    )


def _path(env: Env, raw: str) -> Path:
    path = Path(raw).expanduser()
    return path if path.is_absolute() else env.cwd / path

