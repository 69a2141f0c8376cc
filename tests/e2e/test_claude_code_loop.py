"""The real Claude Code CLI with Lynkr's server tools in the loop (`LYNKR_SERVER_TOOLS`).

The scripted OpenAI upstream first asks for `workspace_task_create` (a server tool: the
gateway runs it inside the turn), then for Claude Code's Bash (the CLI runs it), then
answers. The CLI must complete without ever seeing the server tool, the task must exist,
the decision must be audited, and every request the upstream got must carry a consistent
history (each assistant tool call answered by a tool message). Then the same with one
answer that mixes a server call and a client call.

Run with: `.venv/bin/python -m pytest tests/e2e -m slow -q`
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.processes import gateway_processes
from tests.e2e.test_claude_code import BASH_CALL, DONE, _run_claude, claude_cli  # noqa: F401

pytestmark = pytest.mark.slow

TASK_CALL = {"name": "workspace_task_create", "id": "call_task1",
             "arguments": {"title": "ship the proof file"}}
BASH = {**BASH_CALL, "id": "call_bash1"}


@pytest.fixture
def loop_stack(tmp_path: Path) -> Any:
    with gateway_processes(tmp_path, extra_env={"LYNKR_SERVER_TOOLS": "tasks,index"}) as state:
        yield state


def _script(stack: dict[str, Any], steps: list[dict[str, Any]]) -> None:
    httpx.post(stack["fake"] + "/_script", json={"responses": steps}).raise_for_status()


def _requests(stack: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = httpx.get(stack["fake"] + "/_requests").json()
    return [r["body"] for r in found if r["path"].endswith("/chat/completions")]


def _assert_consistent(messages: list[dict[str, Any]]) -> None:
    """OpenAI's rule: an assistant message's tool calls are each answered by a `tool`
    message before the next non-tool message."""
    for i, message in enumerate(messages):
        wanted = {c["id"] for c in message.get("tool_calls") or ()}
        answered = set()
        for later in messages[i + 1:]:
            if later["role"] != "tool":
                break
            answered.add(later["tool_call_id"])
        assert wanted <= answered, f"message {i}: {wanted - answered} unanswered"


def _lynkr(stack: dict[str, Any], *args: str) -> Any:
    done = subprocess.run([sys.executable, "-m", "lynkr", *args, "--json"],
                          cwd=stack["db"].parent.parent, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _cli_transcripts(stack: dict[str, Any]) -> str:
    root = stack["tmp"] / "home" / ".claude" / "projects"
    return "".join(p.read_text() for p in root.rglob("*.jsonl"))


def _check(stack: dict[str, Any], result: subprocess.CompletedProcess[str],
           workspace: Path) -> None:
    assert result.returncode == 0, result.stderr + result.stdout
    output = json.loads(result.stdout)
    assert output["is_error"] is False, output
    assert (workspace / "proof.txt").read_text().strip() == "lynkr-ok"
    seen = _cli_transcripts(stack)
    assert "lynkr-ok" in seen  # the CLI's own transcript is there...
    assert "workspace_task_create" not in seen  # ...and never saw the server tool
    bodies = _requests(stack)
    assert len(bodies) == 3
    for body in bodies:
        _assert_consistent(body["messages"])
        assert body["tools"][-1]["function"]["name"].startswith("workspace_")
    last = [c["id"] for m in bodies[2]["messages"] for c in m.get("tool_calls") or ()]
    assert last == ["call_task1", "call_bash1"]  # the hidden step, spliced back from the log
    tasks = _lynkr(stack, "tasks")
    assert [t["title"] for t in tasks] == ["ship the proof file"]
    decisions = _lynkr(stack, "audit", "--session", output["session_id"])
    rows = decisions if isinstance(decisions, list) else decisions["decisions"]
    assert [(d["tool"], d["decision"]) for d in rows] == [("workspace_task_create", "allow")]


def test_a_server_tool_then_a_client_tool_then_the_answer(claude_cli, loop_stack):  # noqa: F811
    _script(loop_stack, [{"text": "", "tool_calls": [TASK_CALL]},
                         {"text": "", "tool_calls": [BASH]}, DONE])
    result, workspace = _run_claude(claude_cli, loop_stack)
    _check(loop_stack, result, workspace)


def test_one_answer_mixing_a_server_and_a_client_call(claude_cli, loop_stack):  # noqa: F811
    _script(loop_stack, [{"text": "", "tool_calls": [TASK_CALL, BASH]}, DONE, DONE])
    result, workspace = _run_claude(claude_cli, loop_stack)
    _check_mixed(loop_stack, result, workspace)


def _check_mixed(stack: dict[str, Any], result: subprocess.CompletedProcess[str],
                 workspace: Path) -> None:
    assert result.returncode == 0, result.stderr + result.stdout
    assert (workspace / "proof.txt").read_text().strip() == "lynkr-ok"
    assert "workspace_task_create" not in _cli_transcripts(stack)
    bodies = _requests(stack)
    assert len(bodies) == 2
    for body in bodies:
        _assert_consistent(body["messages"])
    second = bodies[1]["messages"]
    calls = [c["id"] for m in second for c in m.get("tool_calls") or ()]
    assert calls == ["call_task1", "call_bash1"]  # the server call spliced back in place
    answered = [m["tool_call_id"] for m in second if m["role"] == "tool"]
    assert answered == ["call_task1", "call_bash1"]
