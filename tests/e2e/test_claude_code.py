"""The real Claude Code CLI through a real `lynkr serve`, against the fake OpenAI upstream.

Tested with `@anthropic-ai/claude-code` 2.1.330 from the npm registry (installed by the
`claude_cli` fixture into the git-ignored `tools/.node/`, reused when present). The CLI
runs in `-p` mode exactly as ../shared/CLAUDE_CODE.md shows: fresh HOME and workspace,
`env -i`, `IS_SANDBOX=1`, `--dangerously-skip-permissions`, `--output-format json`.
The fake upstream answers with a Bash tool call that writes `proof.txt`, then a text.

Run with: `.venv/bin/python -m pytest tests/e2e -m slow -q`
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventstore import SqliteRecorder
from eventstore.events.session import ModelResponded, SessionStarted, StreamAborted, TurnStarted
from tests.e2e.processes import REPO, gateway_processes

pytestmark = pytest.mark.slow

NODE_DIR = REPO / "tools" / ".node"
CLAUDE = NODE_DIR / "node_modules" / ".bin" / "claude"
CLAUDE_PACKAGE = "@anthropic-ai/claude-code@2.1.330"  # the version .ci/run installs
BASH_CALL = {"name": "Bash", "arguments": {"command": "echo lynkr-ok > proof.txt",
                                           "description": "Write the proof file"}}
DONE = {"text": "Done: wrote proof.txt"}


def _say(config: pytest.Config, message: str) -> None:
    """Write a line on the terminal now, whether or not output is captured (`-s`)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        print(message, file=sys.__stderr__, flush=True)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(message)


@pytest.fixture(scope="session")
def claude_cli(pytestconfig: pytest.Config) -> Path:
    """The Claude Code CLI, installed from npm into tools/.node/ unless already there."""
    if not CLAUDE.exists():
        npm = shutil.which("npm")
        assert npm, "npm is needed to install @anthropic-ai/claude-code for this test"
        _say(pytestconfig, f"\ninstalling {CLAUDE_PACKAGE} from the npm registry into "
                           f"{NODE_DIR} (first run only, about a minute)...")
        started = time.monotonic()
        done = subprocess.run([npm, "install", "--prefix", str(NODE_DIR), CLAUDE_PACKAGE],
                              capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, f"npm install {CLAUDE_PACKAGE} failed:\n{done.stderr[-2000:]}"
        _say(pytestconfig, f"installed {CLAUDE_PACKAGE} in {time.monotonic() - started:.0f} s")
    return CLAUDE


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A fake OpenAI upstream process and a `lynkr serve` process in front of it."""
    with gateway_processes(tmp_path) as state:
        yield state


def _script(stack: dict[str, Any], steps: list[dict[str, Any]]) -> None:
    httpx.post(stack["fake"] + "/_script", json={"responses": steps}).raise_for_status()


def _run_claude(cli: Path, stack: dict[str, Any], prompt: str = "Write the proof file with Bash",
                *, args: tuple[str, ...] = (), env: dict[str, str] | None = None,
                ) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run `claude -p PROMPT` offline against the stack's gateway (fresh HOME and workspace);
    `args` and `env` add CLI flags and variables."""
    home, workspace = stack["tmp"] / "home", stack["tmp"] / "workspace"
    home.mkdir()
    workspace.mkdir()
    base = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home),
            "CLAUDE_CONFIG_DIR": str(home / ".claude"), "TERM": "dumb", "IS_SANDBOX": "1",
            "ANTHROPIC_BASE_URL": stack["url"], "ANTHROPIC_API_KEY": "anything",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1",
            "DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1", **(env or {})}
    result = subprocess.run(
        [str(cli), "-p", prompt, "--output-format", "json", "--dangerously-skip-permissions",
         *args], cwd=workspace, env=base, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=180)
    return result, workspace


def _session_events(db: Path, session_id: str) -> list[Any]:
    recorder = SqliteRecorder(db)
    try:
        return [r.event for r in recorder.read_stream(f"session-{session_id}")]
    finally:
        recorder.close()


def _upstream_requests(stack: dict[str, Any]) -> list[dict[str, Any]]:
    requests: list[dict[str, Any]] = httpx.get(stack["fake"] + "/_requests").json()
    return [r for r in requests if r["path"].endswith("/chat/completions")]


def _assert_round_trip(result: subprocess.CompletedProcess[str], workspace: Path) -> str:
    assert result.returncode == 0, result.stderr + result.stdout
    output = json.loads(result.stdout)
    assert output["is_error"] is False
    assert (workspace / "proof.txt").read_text().strip() == "lynkr-ok"
    return str(output["session_id"])


def test_claude_code_runs_a_bash_tool_round_trip_streaming(claude_cli, stack):
    """Streaming: the tool runs, the CLI exits 0, the turns land in session-<CLI session id>."""
    _script(stack, [{"tool_calls": [BASH_CALL]}, DONE])
    result, workspace = _run_claude(claude_cli, stack)
    output_session = _assert_round_trip(result, workspace)
    requests = _upstream_requests(stack)
    _check_session(stack, output_session, requests)


def test_claude_code_falls_back_to_non_streaming_after_a_cut_stream(claude_cli, stack):
    """A stream cut mid-tool-call: the CLI resends without `stream`, and still completes."""
    _script(stack, [{"tool_calls": [BASH_CALL], "fault": "cut"}, {"tool_calls": [BASH_CALL]},
                    DONE])
    result, workspace = _run_claude(claude_cli, stack)
    session = _assert_round_trip(result, workspace)
    requests = _upstream_requests(stack)
    assert requests[0]["body"].get("stream") is True
    assert "stream" not in requests[1]["body"]  # the CLI's non-streaming fallback
    events = _check_session(stack, session, requests)
    assert any(isinstance(e, StreamAborted) for e in events)
    assert any(isinstance(e, TurnStarted) and not e.stream for e in events)


def _check_session(stack: dict[str, Any], session: str,
                          requests: list[dict[str, Any]]) -> list[Any]:
    events = _session_events(stack["db"], session)
    started = [e for e in events if isinstance(e, SessionStarted)]
    assert started
    assert started[0].source == "header"  # X-Claude-Code-Session-Id named the stream
    turns = [e for e in events if isinstance(e, TurnStarted)]
    assert len(turns) == len(requests) >= 2
    assert sum(isinstance(e, ModelResponded) for e in events) >= 2
    return events
