"""`lynkr serve` as a real subprocess: start-up, validation, flags, a taken port or data
directory (`lynkr config` is in test_cmd_config.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import trio

from tests.e2e.processes import start, stop

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


def test_a_non_loopback_host_is_reported_with_the_other_bad_settings(tmp_path):
    """HOST=0.0.0.0 and a bad PORT: both lines in one pass, exit 2."""
    result = _lynkr(tmp_path, "serve", HOST="0.0.0.0", PORT="eighty")
    assert result.returncode == 2
    lines = sorted(result.stderr.strip().splitlines())
    assert len(lines) == 2
    assert lines[0].startswith("lynkr: config: HOST: '0.0.0.0' is not a loopback address")
    assert lines[1].startswith("lynkr: config: PORT: 'eighty' is not a whole number")


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path):
    """A port another socket listens on: one line naming it, exit 2, no traceback."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        result = _lynkr(tmp_path, "serve", "--port", str(port))
    assert result.returncode == 2
    assert result.stderr == (f"lynkr: port {port} on 127.0.0.1 is in use; set PORT or pass "
                             "--port\n")
    assert not (tmp_path / "data" / "lynkr.db").exists()  # refused before the log opened


def test_serve_help_lists_its_flags_and_the_variables_that_matter(tmp_path):
    """`serve --help` names --host, --port, --data-dir and the main variables."""
    result = _lynkr(tmp_path, "serve", "--help")
    assert result.returncode == 0
    for word in ("--host", "--port", "--data-dir", "HOST", "PORT", "LYNKR_DATA_DIR",
                 "WORKSPACE_ROOT", "MODEL_PROVIDER", "OPENAI_BASE_URL", "LOG_LEVEL"):
        assert word in result.stdout


def test_serve_flags_override_the_environment(tmp_path):
    """--host, --port and --data-dir win over HOST, PORT and LYNKR_DATA_DIR."""
    env = _env(tmp_path, HOST="0.0.0.0", PORT="eighty", LYNKR_DATA_DIR="not-here",
               LOG_LEVEL="warning")
    proc, url = start([sys.executable, "-m", "lynkr", "serve", "--host", "127.0.0.1",
                       "--port", "0", "--data-dir", "chosen"], tmp_path, env,
                      "lynkr: listening on ", "stderr")
    try:
        assert httpx.get(url + "/health").status_code == 200
    finally:
        stop(proc)
    assert (tmp_path / "chosen" / "lynkr.db").exists()
    assert not (tmp_path / "not-here").exists()


def test_a_second_gateway_on_the_same_data_directory_is_refused(tmp_path):
    """While one gateway runs, another on its data directory exits 2 with one line."""
    first, _ = start([sys.executable, "-m", "lynkr", "serve"], tmp_path,
                     _env(tmp_path, PORT="0", LOG_LEVEL="warning"), "lynkr: listening on ",
                     "stderr")
    try:
        second = _lynkr(tmp_path, "serve", PORT="0")
    finally:
        stop(first)
    assert second.returncode == 2
    assert second.stderr == (f"lynkr: another gateway (pid {first.pid}) is using data "
                             f"directory {tmp_path / 'data'} (one gateway per event log); "
                             "stop it, or set LYNKR_DATA_DIR or pass --data-dir\n")


def test_the_data_directory_is_free_again_after_kill_9(tmp_path):
    """The lock dies with its process: a gateway killed with -9 does not block the next."""
    args = [sys.executable, "-m", "lynkr", "serve"]
    env = _env(tmp_path, PORT="0", LOG_LEVEL="warning")
    first, _ = start(args, tmp_path, env, "lynkr: listening on ", "stderr")
    stop(first, signal.SIGKILL)
    assert (tmp_path / "data" / "gateway.lock").exists()
    second, url = start(args, tmp_path, env, "lynkr: listening on ", "stderr")
    try:
        assert httpx.get(url + "/health").status_code == 200
    finally:
        stop(second)


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



def test_sigterm_right_after_the_listening_line_shuts_down_cleanly(tmp_path):
    """A supervisor that stops the gateway as soon as it says it listens gets a clean exit."""
    proc, _ = start([sys.executable, "-m", "lynkr", "serve"], tmp_path,
                    _env(tmp_path, PORT="0", LYNKR_PROJECTOR="thread"),
                    "lynkr: listening on ", "stderr")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    assert proc.stderr is not None
    rest = proc.stderr.read()
    stop(proc, signal.SIGCONT)  # already exited: closes its pipes
    assert "Traceback" not in rest
