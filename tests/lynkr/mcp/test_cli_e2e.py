"""End to end: `lynkr mcp attach/list/call/detach` against a real `lynkr serve` subprocess."""

from __future__ import annotations

import getpass
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest

from tests.lynkr.mcp.conftest import CRASHY, servers_under

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
# A newcomer's shell: the venv is not activated, so its bin/ is on nobody's PATH.
PATH = os.pathsep.join(p for p in os.environ.get("PATH", os.defpath).split(os.pathsep)
                       if p and Path(p).resolve() != BIN.resolve())


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """`lynkr serve` on 127.0.0.1, a free port; yields (base URL, pid); SIGTERM after."""
    env = {**os.environ, "PORT": "0", "HOST": "127.0.0.1", "LYNKR_DATA_DIR": str(tmp_path / "d"),
           "MCP_MANIFEST_DIRS": str(tmp_path / "none"), "LOG_LEVEL": "warning", "PATH": PATH}
    env.pop("LYNKR_ADMIN_TOKEN", None)
    proc = subprocess.Popen([str(BIN / "lynkr"), "serve"], cwd=tmp_path, env=env,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    url = None
    for line in proc.stderr:
        if (found := re.search(r"listening on (http://\S+)", line)):
            url = found.group(1)
            break
    assert url, "lynkr serve did not start"
    try:
        yield url, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        proc.stderr.close()


def lynkr(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `lynkr mcp --url URL ARGS…`."""
    return subprocess.run([str(BIN / "lynkr"), "mcp", "--url", url, *args], text=True,
                          capture_output=True, timeout=120, check=False,
                          env={**os.environ, "PATH": PATH})


def test_readme_example_works_verbatim(gateway: tuple[str, int]) -> None:
    """`attach --name time -- mcp-server-time` finds the server beside `lynkr` and says so."""
    url, _ = gateway
    attached = lynkr(url, "attach", "--name", "time", "--", "mcp-server-time")
    assert attached.returncode == 0, attached.stderr
    assert f"mcp-server-time: using {BIN / 'mcp-server-time'}" in attached.stderr
    assert "mcp_time_get_current_time" in attached.stdout


def test_command_that_cannot_start_fails_at_once_and_leaves_nothing(
        gateway: tuple[str, int], tmp_path: Path) -> None:
    """A typo is refused with the reason before anything is attached or recorded (no start
    attempts, no backoff to wait through); the corrected attach then works."""
    url, _ = gateway
    failed = lynkr(url, "attach", "--name", "time", "--", "mcp-server-tyme")
    assert failed.returncode == 1
    assert "cannot start 'mcp-server-tyme': No such file or directory" in failed.stderr
    assert "time" not in lynkr(url, "list").stdout
    log = apsw.Connection(str(tmp_path / "d" / "lynkr.db"), flags=apsw.SQLITE_OPEN_READONLY)
    assert log.execute("SELECT count(*) FROM events WHERE stream_id = 'mcp-time'").fetchall() == [
        (0,)]
    log.close()
    assert lynkr(url, "attach", "--name", "time", "--", "mcp-server-time").returncode == 0


def test_time_server_attaches_lists_and_answers(gateway: tuple[str, int]) -> None:
    """mcp-server-time attaches live and answers `lynkr mcp call`."""
    url, _ = gateway
    attached = lynkr(url, "attach", "--name", "time", "--", str(BIN / "mcp-server-time"))
    assert attached.returncode == 0, attached.stderr
    assert "mcp_time_get_current_time" in attached.stdout
    called = lynkr(url, "call", "time", "get_current_time", '{"timezone": "UTC"}')
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout)["timezone"] == "UTC"
    bad = lynkr(url, "call", "time", "get_current_time", '{"timezone": "Nowhere/City"}')
    assert bad.returncode == 1
    assert "Invalid timezone" in bad.stdout


def test_git_server_from_manifest_answers(gateway: tuple[str, int], tmp_path: Path) -> None:
    """mcp-server-git attached from a .mcp.json manifest answers git_status."""
    url, _ = gateway
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "hello.txt").write_text("hi\n")
    manifest = tmp_path / ".mcp.json"
    manifest.write_text(json.dumps({"mcpServers": {"git": {
        "command": str(BIN / "mcp-server-git"), "args": ["--repository", str(repo)]}}}))
    attached = lynkr(url, "attach", str(manifest))
    assert attached.returncode == 0, attached.stderr + attached.stdout
    listed = json.loads(lynkr(url, "list", "--json").stdout)
    names = [t["name"] for s in listed["servers"] for t in s["tools"]]
    assert "mcp_git_git_status" in names
    status = lynkr(url, "call", "git", "git_status", json.dumps({"repo_path": str(repo)}))
    assert status.returncode == 0, status.stderr
    assert "hello.txt" in status.stdout


def test_detach_leaves_no_orphan_process(gateway: tuple[str, int]) -> None:
    """After `lynkr mcp detach`, the gateway has no child process left for that server."""
    url, pid = gateway
    assert lynkr(url, "attach", "--name", "crashy", "--", sys.executable,
                 str(CRASHY)).returncode == 0
    assert servers_under(pid)
    detached = lynkr(url, "detach", "crashy")
    assert detached.returncode == 0, detached.stderr
    assert servers_under(pid) == []
    assert "crashy" not in lynkr(url, "list").stdout
    missing = lynkr(url, "call", "crashy", "echo", '{"text": "x"}')
    assert missing.returncode == 1
    assert "no MCP server named 'crashy'" in missing.stderr


def test_unreachable_gateway_is_a_clear_error(tmp_path: Path) -> None:
    """The CLI says the gateway is not running instead of a traceback."""
    result = lynkr("http://127.0.0.1:9", "list")
    assert result.returncode == 1
    assert "cannot reach the gateway" in result.stderr
    assert "Traceback" not in result.stderr


def test_mcp_call_goes_through_the_policy_engine_and_is_audited(
        gateway: tuple[str, int], tmp_path: Path) -> None:
    """`lynkr mcp call` is decided and recorded by the gateway under cli:<user>, in the
    session admin-local; `lynkr audit` and `lynkr transcript` show it."""
    url, _ = gateway
    assert lynkr(url, "attach", "--name", "time", "--", str(BIN / "mcp-server-time")
                 ).returncode == 0
    called = lynkr(url, "call", "time", "get_current_time", '{"timezone": "UTC"}')
    assert called.returncode == 0, called.stderr
    assert "session: admin-local" in called.stderr
    env = {**os.environ, "PATH": PATH, "LYNKR_DATA_DIR": str(tmp_path / "d")}
    audit = subprocess.run([str(BIN / "lynkr"), "audit", "--session", "admin-local", "--json"],
                           text=True, capture_output=True, timeout=120, check=False, env=env,
                           cwd=tmp_path)
    [row] = json.loads(audit.stdout)
    assert (row["tool"], row["decision"]) == ("mcp_time_get_current_time", "allow")
    assert row["caller"] == f"cli:{getpass.getuser()}"
    transcript = subprocess.run([str(BIN / "lynkr"), "transcript", "admin-local"], text=True,
                                capture_output=True, timeout=120, check=False, env=env,
                                cwd=tmp_path)
    assert "── tool    mcp_time_get_current_time ok in" in transcript.stdout
    assert '"timezone":"UTC"' in transcript.stdout.replace(" ", "")
