"""`tools/bench_proxy.py`'s Claude-Code-shaped requests: what each target is sent."""

from __future__ import annotations

import json

from lynkr.orchestrator import resolve_session
from tools.bench_proxy import claude_code_body, session_name


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


def test_every_connection_names_a_session_the_gateway_accepts():
    """Each target's connection ids are taken as sent (source "header"), one per connection."""
    for target in ("lynkr", "lynkr+10000"):
        names = {session_name(target, True, 32, index, "small") for index in range(32)}
        assert len(names) == 32
        for name in names:
            ref = resolve_session({"x-session-id": name}, {"messages": []})
            assert (ref.session_id, ref.source) == (name, "header")
