"""Sandbox command builders, and a real MCP server under bubblewrap."""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
from pathlib import Path

import pytest

from actors import EventStore
from lynkr.errors import McpError
from lynkr.mcp import SandboxSettings, build_bwrap, build_docker, open_mcp, sandbox_command
from tests.lynkr.mcp.conftest import CRASHY, crashy_spec, descendants_of, fast_settings

WS = Path("/srv/workspace")
BASE_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/root", "OPENAI_API_KEY": "sk-secret"}


def test_bwrap_isolates_network_tmp_and_mounts_workspace_read_only() -> None:
    """The default bwrap command unshares the network, has a private /tmp, ro workspace."""
    cmd = build_bwrap(["server", "--flag"], SandboxSettings(enabled=True), workspace=WS,
                      env={"TOKEN_FOR_SERVER": "t"}, base_env=BASE_ENV)
    argv = list(cmd.argv)
    assert argv[0] == "bwrap"
    assert argv[-3:] == ["--", "server", "--flag"]
    assert "--unshare-net" in argv
    assert "--unshare-pid" in argv
    assert argv[argv.index("--tmpfs") + 1] == "/tmp"
    assert ["--ro-bind", str(WS), str(WS)] == argv[argv.index(str(WS)) - 1:][:3]
    assert cmd.env == {"PATH": "/usr/bin:/bin", "HOME": "/root", "TOKEN_FOR_SERVER": "t"}


def test_bwrap_read_write_workspace_and_network_by_setting() -> None:
    """MCP_SANDBOX_WORKSPACE=rw binds it writable; ALLOW_NETWORK keeps the network."""
    settings = SandboxSettings(enabled=True, workspace="rw", allow_network=True)
    argv = list(build_bwrap(["s"], settings, workspace=WS, env={}, base_env=BASE_ENV).argv)
    assert "--unshare-net" not in argv
    assert argv[argv.index(str(WS)) - 1] == "--bind"


def test_docker_argument_vector() -> None:
    """The docker command mirrors the bwrap sandbox and passes env by name only."""
    settings = SandboxSettings(enabled=True, runtime="docker", image="python:3.11-slim",
                               ro_paths=(Path("/opt/tools"),))
    cmd = build_docker(["mcp-server-time"], settings, workspace=WS, name="time",
                       env={"TZ": "UTC"}, base_env=BASE_ENV)
    assert list(cmd.argv) == [
        "docker", "run", "--rm", "-i", "--init", "--read-only", "--tmpfs", "/tmp",
        "--name", "lynkr-mcp-time", "--network", "none",
        "-v", "/srv/workspace:/srv/workspace:ro", "-w", "/srv/workspace",
        "-v", "/opt/tools:/opt/tools:ro",
        "-e", "HOME", "-e", "PATH", "-e", "TZ",
        "python:3.11-slim", "mcp-server-time"]
    assert "sk-secret" not in " ".join(cmd.argv)
    assert "OPENAI_API_KEY" not in cmd.env


def test_docker_without_image_is_a_clear_error() -> None:
    """MCP_SANDBOX_RUNTIME=docker without MCP_SANDBOX_IMAGE names the missing setting."""
    with pytest.raises(McpError, match="MCP_SANDBOX_IMAGE"):
        build_docker(["s"], SandboxSettings(enabled=True, runtime="docker"), workspace=WS,
                     name="s", env={}, base_env=BASE_ENV)


def test_missing_runtime_refuses_to_start_unsandboxed() -> None:
    """A sandbox runtime not on PATH is an error naming the package, never a bare start."""
    settings = SandboxSettings(enabled=True, runtime="bwrap")
    with pytest.raises(McpError, match=r"bubblewrap.*unsandboxed"):
        sandbox_command(["s"], settings, workspace=WS, name="s", env={},
                        base_env={"PATH": "/nonexistent"})


def test_sandbox_off_passes_only_allowed_environment() -> None:
    """Without a sandbox the command runs as is, still without the gateway's secrets."""
    cmd = sandbox_command(["s", "a"], SandboxSettings(), workspace=WS, name="s",
                          env={"X": "1"}, base_env=BASE_ENV)
    assert cmd.argv == ("s", "a")
    assert cmd.env == {"PATH": "/usr/bin:/bin", "HOME": "/root",
                                                  "X": "1"}


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap is not installed "
                    "(Debian package bubblewrap)")
async def test_bwrap_server_cannot_read_outside_or_connect_but_works(
        store: EventStore, tmp_path: Path) -> None:
    """Under bwrap tools work, files outside the mounts and the network do not; detach cleans up."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "inside.txt").write_text("visible")
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    sandbox = SandboxSettings(enabled=True, ro_paths=(CRASHY.parent,))
    settings = dataclasses.replace(fast_settings(), sandbox=sandbox)
    before = set(descendants_of(os.getpid()))  # other tests' children are not ours to judge
    try:
        async with open_mcp(settings, store, workspace=workspace) as runtime:
            view = await runtime.attach(crashy_spec())
            assert view.state == "ready", view.last_reason
            assert (await runtime.call("crashy", "echo", {"text": "ok"})).text() == "ok"
            inside = await runtime.call("crashy", "read_file",
                                        {"path": str(workspace / "inside.txt")})
            assert inside.text() == "visible"
            outside = await runtime.call("crashy", "read_file", {"path": str(secret)})
            assert outside.is_error
            assert "top secret" not in outside.text()
            net = await runtime.call("crashy", "connect", {"host": "127.0.0.1", "port": port})
            assert net.is_error
            assert runtime.catalogue().servers["crashy"].state == "ready"
            await runtime.detach("crashy")
            # bwrap and its namespace are gone
            assert set(descendants_of(os.getpid())) - before == set()
    finally:
        listener.close()
