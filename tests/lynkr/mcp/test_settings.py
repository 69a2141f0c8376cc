"""`McpSettings.from_env`: defaults, parsing and problems."""

from __future__ import annotations

from pathlib import Path

from lynkr._env import Env
from lynkr.mcp import McpSettings


def test_defaults_are_production_sane(tmp_path: Path) -> None:
    """Defaults: ~/.claude/mcp, auto negotiation, 0.5 s x2 backoff capped at 30 s, 5 per 60 s."""
    env = Env({}, tmp_path)
    settings = McpSettings.from_env(env)
    assert env.problems == []
    assert settings.manifest is None
    assert settings.manifest_dirs == (Path("~/.claude/mcp").expanduser(),)
    assert settings.protocol_mode == "auto"
    assert not settings.sandbox.enabled
    r = settings.restart
    assert (r.base_delay, r.factor, r.max_delay, r.max_restarts, r.window) == (
        0.5, 2.0, 30.0, 5, 60.0)


def test_values_are_read(tmp_path: Path) -> None:
    """Every variable is read; dirs are ;-separated and relative to the working directory."""
    env = Env({"MCP_SERVER_MANIFEST": "m.json", "MCP_MANIFEST_DIRS": "a;/b",
               "MCP_PROTOCOL_MODE": "legacy", "MCP_RESTART_BASE_DELAY": "0.01",
               "MCP_MAX_RESTARTS": "2", "MCP_SANDBOX_ENABLED": "true",
               "MCP_SANDBOX_RUNTIME": "docker", "MCP_SANDBOX_IMAGE": "img",
               "MCP_SANDBOX_WORKSPACE": "rw", "MCP_SANDBOX_ENV_ALLOW": "PATH,LANG",
               "MCP_SANDBOX_RO_PATHS": "/opt/x;rel", "LYNKR_ADMIN_TOKEN": "tok"}, tmp_path)
    s = McpSettings.from_env(env)
    assert env.problems == []
    assert s.manifest == tmp_path / "m.json"
    assert s.manifest_dirs == (tmp_path / "a", Path("/b"))
    assert (s.protocol_mode, s.restart.base_delay, s.restart.max_restarts) == ("legacy", 0.01, 2)
    sb = s.sandbox
    assert (sb.enabled, sb.runtime, sb.image, sb.workspace) == (True, "docker", "img", "rw")
    assert sb.env_allow == ("PATH", "LANG")
    assert sb.ro_paths == (Path("/opt/x"), tmp_path / "rel")
    assert s.admin_token == "tok"


def test_bad_values_are_problems(tmp_path: Path) -> None:
    """Wrong values become one problem line each."""
    env = Env({"MCP_SANDBOX_RUNTIME": "podman", "MCP_REQUEST_TIMEOUT": "-1",
               "MCP_PROTOCOL_MODE": "x", "MCP_SANDBOX_ENABLED": "maybe"}, tmp_path)
    McpSettings.from_env(env)
    joined = "\n".join(env.problems)
    for name in ("MCP_SANDBOX_RUNTIME", "MCP_REQUEST_TIMEOUT", "MCP_PROTOCOL_MODE",
                 "MCP_SANDBOX_ENABLED"):
        assert name in joined
