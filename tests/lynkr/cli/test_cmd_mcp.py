"""`lynkr mcp …` argument handling that needs no gateway: clear errors, never tracebacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from lynkr.cli import main

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
