"""`lynkr mcp …`: argument handling that needs no gateway (clear errors, never tracebacks),
and what `list` says about a real gateway with nothing attached."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lynkr.cli import build_parser, main
from lynkr.cli._cmd_mcp import _attach_body, resolve_command
from tests.e2e.processes import REPO, start, stop

NOWHERE = "http://127.0.0.1:9"


def test_missing_manifest_file_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    """`attach` with a manifest that does not exist says so, exit 1."""
    code = main(["mcp", "--url", NOWHERE, "attach", str(tmp_path / "none.json")])
    assert code == 1
    assert "none.json" in capsys.readouterr().err


def test_invalid_manifest_json_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    """`attach` with a broken manifest names the problem, exit 1."""
    manifest = tmp_path / "m.json"
    manifest.write_text("{broken")
    assert main(["mcp", "--url", NOWHERE, "attach", str(manifest)]) == 1
    assert "invalid JSON" in capsys.readouterr().err


def test_attach_needs_a_command_after_name(capsys: pytest.CaptureFixture[str]) -> None:
    """`attach --name N` without a command explains the form."""
    assert main(["mcp", "--url", NOWHERE, "attach", "--name", "x"]) == 1
    assert "lynkr mcp attach --name N -- CMD" in capsys.readouterr().err


def test_env_items_must_be_name_value(capsys: pytest.CaptureFixture[str]) -> None:
    """`--env` items without '=' are refused."""
    assert main(["mcp", "--url", NOWHERE, "attach", "--name", "x", "--env", "NOVALUE",
                 "--", "cmd"]) == 1
    assert "NAME=value" in capsys.readouterr().err


def test_call_arguments_must_be_json(capsys: pytest.CaptureFixture[str]) -> None:
    """`call` with arguments that are not JSON says so before any request."""
    assert main(["mcp", "--url", NOWHERE, "call", "s", "t", "{nope"]) == 1
    assert "arguments: invalid JSON" in capsys.readouterr().err


def test_unreachable_gateway_names_the_address(capsys: pytest.CaptureFixture[str]) -> None:
    """Any command against a gateway that is not running says where it looked."""
    assert main(["mcp", "--url", NOWHERE, "list"]) == 1
    assert "cannot reach the gateway at http://127.0.0.1:9" in capsys.readouterr().err


def _executable(directory: Path, name: str) -> Path:
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_bare_command_resolves_on_path_first_then_beside_lynkr(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A bare name is found on the user's PATH, else in this Python's bin/; both are said."""
    on_path = _executable(tmp_path / "path", "srv")
    beside = _executable(tmp_path / "venv", "only-here")
    _executable(tmp_path / "venv", "srv")
    monkeypatch.setenv("PATH", str(tmp_path / "path"))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "venv" / "python"))
    assert resolve_command("srv") == str(on_path)
    assert resolve_command("only-here") == str(beside)
    assert resolve_command("nowhere-at-all") == "nowhere-at-all"  # the gateway says why
    err = capsys.readouterr().err
    assert f"srv: using {on_path}" in err
    assert f"only-here: using {beside}" in err


def test_manifest_commands_are_resolved_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    """A manifest's bare command is sent to the gateway as the absolute path found here."""
    found = _executable(tmp_path / "path", "srv")
    monkeypatch.setenv("PATH", str(tmp_path / "path"))
    manifest = tmp_path / ".mcp.json"
    manifest.write_text(json.dumps({"mcpServers": {"a": {"command": "srv", "args": ["-x"]},
                                                   "h": {"type": "http", "url": "http://x"}}}))
    body = build_parser().parse_args(["mcp", "attach", str(manifest)])
    assert _attach_body(body)["mcpServers"] == {"a": {"command": str(found), "args": ["-x"]},
                                                "h": {"type": "http", "url": "http://x"}}


def test_list_with_nothing_attached_says_so(tmp_path: Path) -> None:
    """A gateway without MCP servers: `mcp list` says none are attached, exit 0."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "PYTHONPATH": str(REPO), "PORT": "0", "LOG_LEVEL": "warning"}
    proc, url = start([sys.executable, "-m", "lynkr", "serve"], tmp_path, env,
                      "lynkr: listening on ", "stderr")
    try:
        done = subprocess.run([sys.executable, "-m", "lynkr", "mcp", "--url", url, "list"],
                              cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=60, check=False)
    finally:
        stop(proc)
    assert (done.returncode, done.stdout) == (
        0, "no MCP servers attached (lynkr mcp attach adds one)\n")
