"""`lynkr status` as a real process, with and without a running gateway."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx

from tests.e2e.processes import gateway_processes

HELLO = {"model": "claude-sonnet-4-6", "max_tokens": 64,
         "messages": [{"role": "user", "content": "hello"}]}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_without_a_gateway_it_says_so_and_exits_1(run_lynkr):
    """Nothing listens on the configured port: "not running", no sessions, exit 1."""
    done = run_lynkr("status", PORT=str(_free_port()), MODEL_PROVIDER="openai",
                     OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("gateway: not running at http://127.0.0.1:")
    assert "provider: openai" in lines
    assert "sessions today (UTC): 0" in lines
    assert "last error: none" in lines


def test_with_a_gateway_it_names_pid_provider_sessions_and_last_error(run_lynkr, tmp_path: Path):
    """A served turn and a failed one: running, its pid, 2 sessions, the 500 as last error."""
    (tmp_path / "stack").mkdir()
    with gateway_processes(tmp_path / "stack") as stack:
        httpx.post(stack["fake"] + "/_script",
                   json={"responses": [{"text": "hi"}, {"status": 400}]}).raise_for_status()
        ok = httpx.post(stack["url"] + "/v1/messages", json=HELLO,
                        headers={"x-session-id": "status-ok"})
        bad = httpx.post(stack["url"] + "/v1/messages", json=HELLO,
                         headers={"x-session-id": "status-bad"})
        port = stack["url"].rsplit(":", 1)[1]
        data_dir = stack["tmp"] / "server" / "data"
        done = run_lynkr("status", "--json", PORT=port, LYNKR_DATA_DIR=str(data_dir))
        text = run_lynkr("status", PORT=port, LYNKR_DATA_DIR=str(data_dir))
        pid = stack["lynkr"].pid
    assert (ok.status_code, bad.status_code) == (200, 400)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["running"] is True
    assert (report["pid"], report["provider"], report["sessions_today"]) == (pid, "openai", 2)
    assert report["last_error"]["session_id"] == "status-bad"
    assert report["last_error"]["error"].startswith("400 invalid_request_error")
    assert text.stdout.startswith(f"gateway: running (pid {pid}) at http://127.0.0.1:{port}")
    assert "session status-bad turn 1: 400 invalid_request_error" in text.stdout
