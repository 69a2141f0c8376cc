"""`tools/bench_proxy.py`'s Claude-Code-shaped requests: what each target is sent."""

from __future__ import annotations

import json

from tools.bench_proxy import claude_code_body


def test_a_session_s_turns_grow_by_one_tool_round_trip():
    """Turn n carries 1 + 2n messages, the CLI's system blocks and 24 tools."""
    path, body = claude_code_body("lynkr", False, 3)
    sent = json.loads(body)
    assert path == "/v1/messages"
    assert len(sent["system"]) == 3
    assert len(sent["tools"]) == 24
    assert len(sent["messages"]) == 7
    assert sent["messages"][-1]["content"][0]["type"] == "tool_result"
    assert 90_000 < len(claude_code_body("lynkr", False, 0)[1]) < len(body)


def test_the_direct_target_gets_the_same_turn_as_an_openai_body():
    """The baseline: a chat-completions body with the prompt, history and functions."""
    path, body = claude_code_body("direct", True, 2)
    sent = json.loads(body)
    assert path == "/v1/chat/completions"
    assert sent["stream"] is True
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "user",
                                                     "assistant", "user"]
    assert len(sent["tools"]) == 24
    assert sent["tools"][0]["type"] == "function"
