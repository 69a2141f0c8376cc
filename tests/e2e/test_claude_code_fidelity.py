"""The real Claude Code CLI against backends that answer in content lists with signed
reasoning (Databricks-hosted Claude's documented shape), with extended thinking on, over a
Bash tool round trip; and the loop guard stopping a backend that only answers empty.

Run with: `.venv/bin/python -m pytest tests/e2e/test_claude_code_fidelity.py -q`
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventstore.events.session import ModelResponded, SessionLoopStopped
from tests.e2e.processes import gateway_processes
from tests.e2e.test_claude_code import (  # noqa: F401  (claude_cli: the fixture)
    _run_claude,
    _script,
    _session_events,
    claude_cli,
)

pytestmark = pytest.mark.slow

SIGNATURE = "RXhhbXBsZVNpZ25hdHVyZUZvclR1cm5PbmU="


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "msg_bdrk_e2e", "object": "chat.completion.chunk", "created": 1,
            "model": "databricks-claude-sonnet-4-5",
            "choices": [{"index": 0, "delta": {"role": "assistant", **delta},
                         "finish_reason": finish}]}


def _reasoning(text: str, signature: str = "") -> dict[str, Any]:
    return _chunk({"content": [{"type": "reasoning", "summary": [
        {"type": "summary_text", "text": text, "signature": signature}]}]})


def _bash_turn() -> list[Any]:
    """Signed reasoning as content lists, text as a content list, then the Bash call."""
    call = {"index": 0, "id": "toolu_bdrk_e2e1", "type": "function",
            "function": {"name": "Bash", "arguments": ""}}
    args = json.dumps({"command": "echo lynkr-ok > proof.txt",
                       "description": "Write the proof file"})
    return [_reasoning("The user wants a file. "), _reasoning("I will use Bash."),
            _reasoning("", SIGNATURE),
            _chunk({"content": [{"type": "text", "text": "Writing the proof file."}]}),
            _chunk({"content": None, "tool_calls": [call]}),
            _chunk({"content": None, "tool_calls": [{"index": 0, "function": {
                "arguments": args[:20]}}]}),
            _chunk({"content": None, "tool_calls": [{"index": 0, "function": {
                "arguments": args[20:]}}]}),
            _chunk({"content": ""}, "tool_calls"),
            {"id": "msg_bdrk_e2e", "choices": [], "usage": {
                "prompt_tokens": 900, "completion_tokens": 60, "total_tokens": 960}},
            "[DONE]"]


def _done_turn() -> list[Any]:
    return [_reasoning("The file is written."), _reasoning("", "c2Vjb25kU2lnbmF0dXJl"),
            _chunk({"content": "Done: wrote proof.txt"}), _chunk({"content": ""}, "stop"),
            "[DONE]"]


@pytest.fixture(params=["databricks", "openai"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A fake upstream and a `lynkr serve` for the provider under test."""
    with gateway_processes(tmp_path, provider=request.param) as state:
        state["provider"] = request.param
        yield state


def _upstream_bodies(stack: dict[str, Any]) -> list[dict[str, Any]]:
    requests = httpx.get(stack["fake"] + "/_requests").json()
    return [r["body"] for r in requests
            if r["path"].endswith(("/chat/completions", "/invocations"))]


def _run_thinking_claude(cli: Path, stack: dict[str, Any], prompt: str,
                         ) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Claude Code with extended thinking on, asking for a Claude model."""
    return _run_claude(cli, stack, prompt, args=("--model", "claude-sonnet-4-5"),
                       env={"MAX_THINKING_TOKENS": "31999"})


def test_claude_code_tool_round_trip_with_signed_thinking_in_content_lists(
        claude_cli, stack):  # noqa: F811  (the imported fixture)
    """Turn 1 streams signed reasoning, text and a Bash call as content lists; the CLI runs
    Bash; turn 2's upstream request carries the signed thinking back as a reasoning part."""
    _script(stack, [{"raw_chunks": _bash_turn()}, {"raw_chunks": _done_turn()}])
    result, workspace = _run_thinking_claude(claude_cli, stack, "Write the proof file with Bash")
    assert result.returncode == 0, result.stderr + result.stdout
    output = json.loads(result.stdout)
    assert output["is_error"] is False
    assert "Done: wrote proof.txt" in output["result"]
    assert (workspace / "proof.txt").read_text().strip() == "lynkr-ok"
    bodies = _upstream_bodies(stack)
    assert len(bodies) == 2
    if stack["provider"] == "databricks":
        assert bodies[0]["thinking"]["type"] == "enabled"
    assistant = [m for m in bodies[1]["messages"] if m["role"] == "assistant"][-1]
    assert assistant["content"][0] == {"type": "reasoning", "summary": [
        {"type": "summary_text", "text": "The user wants a file. I will use Bash.",
         "signature": SIGNATURE}]}
    assert assistant["tool_calls"][0]["function"]["name"] == "Bash"
    answers = [e for e in _session_events(stack["db"], output["session_id"])
               if isinstance(e, ModelResponded)]
    assert [a.visible_blocks for a in answers] == [2, 1]  # thinking is not visible


def test_the_loop_guard_stops_a_backend_that_only_answers_empty(
        claude_cli, stack):  # noqa: F811  (the imported fixture)
    """Answers cut at the output limit with reasoning and no visible output: Claude Code
    asks again each time ("…reached the output limit with no visible output…"); after
    exactly three upstream calls the CLI shows Lynkr's message instead."""
    empty = [_reasoning("Hmm."), _reasoning("", SIGNATURE), _chunk({"content": ""}, "length"),
             "[DONE]"]
    _script(stack, [{"raw_chunks": empty, "raw_body": {
        "id": "x", "object": "chat.completion", "choices": [{"index": 0, "finish_reason":
        "length", "message": {"role": "assistant", "content": [{"type": "reasoning", "summary": [
            {"type": "summary_text", "text": "Hmm.", "signature": SIGNATURE}]}]}}]},
        "times": 20}])
    result, _ = _run_thinking_claude(claude_cli, stack, "Say something")
    output = json.loads(result.stdout)
    assert output["is_error"] is True, output
    assert "Lynkr stopped a loop" in output["result"]
    assert len(_upstream_bodies(stack)) == 3
    events = _session_events(stack["db"], output["session_id"])
    stops = [e for e in events if isinstance(e, SessionLoopStopped)]
    assert stops  # the CLI retries, then nudges: each refused request is one event
    assert {(e.rule, e.turns) for e in stops} == {("empty_answers", (1, 2, 3))}
