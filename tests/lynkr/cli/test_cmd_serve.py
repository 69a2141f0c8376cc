"""`lynkr serve` and `lynkr config` as real subprocesses: start-up, validation, masking."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import trio

from lynkr.cli._cmd_serve import is_loopback

REPO = Path(__file__).resolve().parents[3]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
            "PYTHONPATH": str(REPO), **extra}


def _lynkr(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lynkr", *args], cwd=tmp_path,
                          env=_env(tmp_path, **env), capture_output=True, text=True, timeout=30)


def test_bad_settings_exit_2_with_one_line_each_and_no_traceback(tmp_path):
    """Unknown provider and a bad URL: two lines, exit 2, no traceback."""
    result = _lynkr(tmp_path, "serve", MODEL_PROVIDER="bedrock", OPENAI_BASE_URL="nope")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2
    assert all(line.startswith("lynkr: config: ") for line in lines)
    assert "Traceback" not in result.stderr


def test_a_non_loopback_host_is_refused_without_auth(tmp_path):
    """HOST=0.0.0.0 is refused at start with a clear message."""
    result = _lynkr(tmp_path, "serve", HOST="0.0.0.0")
    assert result.returncode == 2
    assert "not a loopback address" in result.stderr


def test_config_prints_effective_settings_with_secrets_masked(tmp_path):
    """Keys show only their last four characters."""
    result = _lynkr(tmp_path, "config", DATABRICKS_API_BASE="https://dbc.example.com",
                    DATABRICKS_API_KEY="dapi-very-secret-1234", MODEL_DEFAULT="m")
    assert result.returncode == 0
    assert "dapi-very-secret" not in result.stdout
    assert "databricks key=****1234" in result.stdout
    assert "MODEL_DEFAULT=m" in result.stdout
    assert "HOST=127.0.0.1" in result.stdout
    assert "LYNKR_PROJECTOR=process" in result.stdout


def test_config_covers_policy_indexer_and_mcp_sections(tmp_path):
    """Tool, indexer and MCP settings are printed too, the admin token masked."""
    result = _lynkr(tmp_path, "config", POLICY_GIT_ALLOW_PUSH="true", INDEXER_WORKERS="1",
                    MCP_SANDBOX_ENABLED="true", LYNKR_ADMIN_TOKEN="admin-token-9876")
    assert result.returncode == 0
    assert "POLICY_GIT_ALLOW_PUSH=True" in result.stdout
    assert "INDEXER_WORKERS=1" in result.stdout
    assert "MCP_SANDBOX_ENABLED=True" in result.stdout
    assert "admin-token" not in result.stdout
    assert "LYNKR_ADMIN_TOKEN=****9876" in result.stdout


def test_config_says_what_to_set_when_nothing_is_configured(tmp_path):
    """With no provider, `lynkr config` ends with the variables to set."""
    result = _lynkr(tmp_path, "config")
    assert "DATABRICKS_API_BASE" in result.stdout.splitlines()[-1]


def test_loopback_detection():
    """localhost, 127.x and ::1 are loopback; others are not."""
    assert all(map(is_loopback, ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"]))
    assert not any(map(is_loopback, ["0.0.0.0", "10.0.0.1", "example.com", "::"]))


async def test_serve_with_no_configuration_starts_and_answers(tmp_path):
    """No settings at all: it starts, /health is 200, /v1/messages is 503, SIGTERM stops it."""
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once; waited on in a thread
        [sys.executable, "-m", "lynkr", "serve"], cwd=tmp_path, env=_env(tmp_path, PORT="0"),
        stderr=subprocess.PIPE, text=True)
    try:
        url = await trio.to_thread.run_sync(_wait_listening, proc)
        async with httpx.AsyncClient() as client:
            assert (await client.get(url + "/health")).status_code == 200
            response = await client.post(url + "/v1/messages", json={
                "model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]})
        assert response.status_code == 503
        assert (tmp_path / "data" / "lynkr.db").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await trio.to_thread.run_sync(_wait_or_kill, proc)
        proc.stderr.close()
    assert code == 0


def _wait_or_kill(proc: subprocess.Popen[str]) -> int | None:
    """The exit code after SIGTERM; None (and the process killed and reaped) after 15 s."""
    try:
        return proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def _wait_listening(proc: subprocess.Popen[str]) -> str:
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("lynkr: listening on "):
            return line.split()[-1]
    raise AssertionError("lynkr serve exited before listening")

