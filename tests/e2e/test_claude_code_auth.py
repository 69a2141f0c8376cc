"""The real Claude Code CLI against `lynkr serve` with `LYNKR_AUTH=keys`: a pro key
completes a tool round trip; the same key, revoked, fails with the 401 message shown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.processes import REPO, gateway_processes
from tests.e2e.test_claude_code import (  # noqa: F401 - claude_cli is a fixture
    BASH_CALL,
    DONE,
    _assert_round_trip,
    _run_claude,
    _script,
    claude_cli,
)

pytestmark = pytest.mark.slow


def _keys(server_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`lynkr keys ARGS` on the gateway's data directory, as a process of its own."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(server_dir),
           "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "lynkr", "keys", *args], cwd=server_dir,
                          env=env, capture_output=True, text=True, timeout=60, check=True)


def test_claude_code_with_a_pro_key_then_with_it_revoked(claude_cli, tmp_path):  # noqa: F811
    """ANTHROPIC_API_KEY=<pro key>: the Bash round trip completes and the turns carry the
    key's user; after `lynkr keys revoke` the CLI fails showing the gateway's 401."""
    with gateway_processes(tmp_path, extra_env={"LYNKR_AUTH": "keys"}) as stack:
        server_dir = stack["tmp"] / "server"
        key = json.loads(_keys(server_dir, "create", "--name", "cc", "--tier", "pro",
                               "--json").stdout)
        _script(stack, [{"tool_calls": [BASH_CALL]}, DONE])
        result, workspace = _run_claude(claude_cli, stack,
                                        env={"ANTHROPIC_API_KEY": key["key"]})
        _assert_round_trip(result, workspace)
        _keys(server_dir, "revoke", key["id"])
        time.sleep(1.5)  # LYNKR_KEYS_REFRESH (1 s): the gateway has seen the revoke
        again: dict[str, Any] = {**stack, "tmp": stack["tmp"] / "again"}
        again["tmp"].mkdir()
        # 2.1.330 retries a 401 with backoff ~10 times (minutes); one retry is enough here
        refused, _ = _run_claude(claude_cli, again, env={"ANTHROPIC_API_KEY": key["key"],
                                                         "CLAUDE_CODE_MAX_RETRIES": "1"})
    assert refused.returncode == 1, refused.stdout + refused.stderr
    output = json.loads(refused.stdout)
    assert (output["is_error"], output["api_error_status"]) == (True, 401)
    assert "API Error: 401 invalid API key or token" in output["result"]
