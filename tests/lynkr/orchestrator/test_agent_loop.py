"""The agent loop over real HTTP: server tools run inside `/v1/messages`, the client sees one
message without them, and the upstream always gets a consistent history."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import trio

from eventstore.events.session import (
    CacheHit,
    LoopStepResponded,
    ModelResponded,
    PolicyDecided,
    StreamAborted,
    ToolCallInterrupted,
    ToolCallStarted,
    ToolCompleted,
)
from lynkr.orchestrator import _loop as loop_module
from lynkr.orchestrator import step_limit_text
from tests.lynkr.http.gateway import running_gateway

SESSION = {"X-Claude-Code-Session-Id": "loop-test"}
BASH = {"name": "Bash", "description": "Run a command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}},
                         "required": ["command"]}}
ASK = {"model": "claude-sonnet-4-6", "max_tokens": 256, "tools": [BASH],
       "messages": [{"role": "user", "content": "plan the release"}]}
TASKS = {"LYNKR_SERVER_TOOLS": "tasks"}


def _create(call_id: str, title: str = "write release notes") -> dict[str, Any]:
    return {"name": "workspace_task_create", "arguments": {"title": title}, "id": call_id}


def _bash(call_id: str) -> dict[str, Any]:
    return {"name": "Bash", "arguments": {"command": "ls"}, "id": call_id}


async def _events(gw, session: str = "loop-test") -> list[Any]:
    return [r.event for r in await gw.system.store.read_stream(f"session-{session}")]


def _upstream_bodies(gw) -> list[dict[str, Any]]:
    return [r["body"] for r in gw.fake.requests if r["path"].endswith("/v1/messages")]


def _consistent(messages: list[dict[str, Any]]) -> None:
    """Every tool_use is answered by a tool_result in the next message, and roles alternate."""
    for i, message in enumerate(messages):
        content = message["content"] if isinstance(message["content"], list) else []
        uses = [b["id"] for b in content if b.get("type") == "tool_use"]
        if i > 0:
            assert message["role"] != messages[i - 1]["role"], messages
        if not uses:
            continue
        assert message["role"] == "assistant"
        assert i + 1 < len(messages), f"tool_use {uses} never answered"
        answered = [b["tool_use_id"] for b in messages[i + 1]["content"]
                    if isinstance(b, dict) and b.get("type") == "tool_result"]
        assert sorted(answered) == sorted(uses), (uses, answered)


def _sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for frame in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.splitlines() if ": " in line)
        out.append((lines["event"], json.loads(lines["data"])))
    return out


async def test_a_server_call_runs_inside_the_turn_and_the_client_sees_one_answer(tmp_path):
    script = [{"text": "Let me note that.", "tool_calls": [_create("toolu_a1")]},
              {"text": "Noted as a task."}]
    async with running_gateway(tmp_path, script, provider="anthropic", env=TASKS) as gw:
        response = await gw.post("/v1/messages", ASK, headers=SESSION)
        events = await _events(gw)
        bodies = _upstream_bodies(gw)
        streams = gw.system.recorder.list_streams("tasks-")
        tasks = [r.event for r in gw.system.recorder.read_stream(streams[0].stream_id)]
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [b["type"] for b in answer["content"]] == ["text", "text"]
    assert answer["content"][1]["text"] == "Noted as a task."
    assert answer["stop_reason"] == "end_turn"
    assert answer["usage"]["output_tokens"] == sum(
        e.usage["output_tokens"] for e in events if isinstance(e, LoopStepResponded))
    # The upstream: Bash first (the client's), then the server tools; then the history.
    names = [t["name"] for t in bodies[0]["tools"]]
    assert names[0] == "Bash"
    assert "workspace_task_create" in names
    assert names[1:] == sorted(names[1:])
    assert len(bodies) == 2
    _consistent(bodies[1]["messages"])
    assert bodies[1]["messages"][-1]["content"][0]["tool_use_id"] == "toolu_a1"
    kinds = [type(e) for e in events]
    for kind in (LoopStepResponded, PolicyDecided, ToolCallStarted, ToolCompleted):
        assert kind in kinds
    assert kinds[-1] is ModelResponded
    assert [getattr(e, "title", None) for e in tasks] == ["write release notes"]


async def test_the_stream_is_one_message_without_server_tool_blocks(tmp_path):
    script = [{"text": "Noting.", "tool_calls": [_create("toolu_s1")]}, {"text": "Done."}]
    async with running_gateway(tmp_path, script, provider="anthropic", env=TASKS) as gw:
        response = await gw.post("/v1/messages", {**ASK, "stream": True}, headers=SESSION)
        events = await _events(gw)
    frames = _sse(response.text)
    kinds = [k for k, _ in frames if k != "ping"]
    assert kinds.count("message_start") == 1
    assert kinds.count("message_stop") == 1
    assert kinds.count("message_delta") == 1
    assert kinds[-1] == "message_stop"
    starts = [d for k, d in frames if k == "content_block_start"]
    assert [d["index"] for d in starts] == list(range(len(starts)))
    assert all(d["content_block"]["type"] != "tool_use" for d in starts)
    text = "".join(d["delta"]["text"] for k, d in frames
                   if k == "content_block_delta" and d["delta"]["type"] == "text_delta")
    assert text == "Noting.Done."
    delta = next(d for k, d in frames if k == "message_delta")
    assert delta["delta"]["stop_reason"] == "end_turn"
    stored = [e for e in events if isinstance(e, ModelResponded)][-1]
    assert delta["usage"]["output_tokens"] == stored.usage["output_tokens"]


async def test_a_mixed_answer_gives_the_client_its_call_and_splices_ours_back(tmp_path):
    script = [{"text": "", "tool_calls": [_create("toolu_m1"), _bash("toolu_m2")]},
              {"text": "All done."}]
    async with running_gateway(tmp_path, script, provider="anthropic", env=TASKS) as gw:
        first = (await gw.post("/v1/messages", ASK, headers=SESSION)).json()
        assert first["stop_reason"] == "tool_use"
        assert [b["name"] for b in first["content"] if b["type"] == "tool_use"] == ["Bash"]
        follow = {**ASK, "messages": [
            *ASK["messages"], {"role": "assistant", "content": first["content"]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_m2",
                                          "content": "README.md"}]}]}
        second = await gw.post("/v1/messages", follow, headers=SESSION)
        bodies = _upstream_bodies(gw)
    assert second.json()["content"][0]["text"] == "All done."
    history = bodies[1]["messages"]
    _consistent(history)
    assert [b["tool_use_id"] for b in history[-1]["content"]] == ["toolu_m1", "toolu_m2"]


async def test_the_next_turn_sees_the_hidden_steps(tmp_path):
    script = [{"text": "", "tool_calls": [_create("toolu_h1")]}, {"text": "Task added."},
              {"text": "Sure."}]
    async with running_gateway(tmp_path, script, provider="anthropic", env=TASKS) as gw:
        first = (await gw.post("/v1/messages", ASK, headers=SESSION)).json()
        follow = {**ASK, "messages": [
            *ASK["messages"], {"role": "assistant", "content": first["content"]},
            {"role": "user", "content": "thanks"}]}
        await gw.post("/v1/messages", follow, headers=SESSION)
        bodies = _upstream_bodies(gw)
    history = bodies[2]["messages"]
    _consistent(history)
    assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant", "user"]
    assert history[1]["content"][0]["id"] == "toolu_h1"
    assert history[3]["content"][0]["text"] == "Task added."


async def test_the_step_limit_ends_the_turn_with_a_notice(tmp_path):
    looping = {"text": "", "tool_calls": [_create("toolu_l")], "times": 5}
    env = {**TASKS, "POLICY_MAX_STEPS": "2"}
    async with running_gateway(tmp_path, [looping], provider="anthropic", env=env) as gw:
        answer = (await gw.post("/v1/messages", ASK, headers=SESSION)).json()
        events = await _events(gw)
    assert answer["stop_reason"] == "end_turn"
    assert answer["content"][-1]["text"] == step_limit_text(2)
    denies = [e for e in events if isinstance(e, PolicyDecided) and e.decision == "deny"]
    assert len(denies) == 1
    assert "POLICY_MAX_STEPS" in denies[0].reason + denies[0].rule


async def test_bad_arguments_go_back_to_the_model_naming_the_field(tmp_path):
    bad = {"name": "workspace_task_create", "arguments": {"title": 7}, "id": "toolu_b1"}
    async with running_gateway(tmp_path, [{"text": "", "tool_calls": [bad]}, {"text": "ok"}],
                               provider="anthropic", env=TASKS) as gw:
        response = await gw.post("/v1/messages", ASK, headers=SESSION)
        bodies = _upstream_bodies(gw)
    assert response.status_code == 200
    result = bodies[1]["messages"][-1]["content"][0]
    assert result["is_error"] is True
    assert "title" in result["content"]


async def test_off_by_default_and_unenabled_names_stay_the_clients(tmp_path):
    clash = {**ASK, "tools": [BASH, {"name": "workspace_task_create", "description": "mine",
                                     "input_schema": {"type": "object"}}]}
    script = [{"text": "", "tool_calls": [_create("toolu_c1")]}]
    async with running_gateway(tmp_path, script, provider="anthropic",
                               env={"LYNKR_SERVER_TOOLS": "index"}) as gw:
        answer = (await gw.post("/v1/messages", clash, headers=SESSION)).json()
        bodies = _upstream_bodies(gw)
    assert answer["content"][0]["name"] == "workspace_task_create"  # the client runs it
    assert [t["description"] for t in bodies[0]["tools"][:2]] == ["Run a command", "mine"]
    async with running_gateway(tmp_path / "off", [{"text": "hi"}], provider="anthropic") as gw:
        await gw.post("/v1/messages", ASK, headers=SESSION)
        assert [t["name"] for t in _upstream_bodies(gw)[0]["tools"]] == ["Bash"]


async def test_a_forced_tool_choice_is_relaxed_after_the_first_step(tmp_path):
    forced = {**ASK, "tool_choice": {"type": "tool", "name": "workspace_task_create"}}
    script = [{"text": "", "tool_calls": [_create("toolu_f1")]}, {"text": "done"}]
    async with running_gateway(tmp_path, script, provider="anthropic", env=TASKS) as gw:
        await gw.post("/v1/messages", forced, headers=SESSION)
        bodies = _upstream_bodies(gw)
    assert bodies[0]["tool_choice"]["type"] == "tool"
    assert bodies[1]["tool_choice"] == {"type": "auto"}


async def test_an_mcp_server_attached_live_answers_inside_the_loop(tmp_path):
    call = {"name": "mcp_time_get_current_time", "arguments": {"timezone": "UTC"},
            "id": "toolu_t1"}
    script = [{"text": "hi"}, {"text": "", "tool_calls": [call]}, {"text": "It is late."}]
    time_server = str(Path(sys.executable).parent / "mcp-server-time")
    async with running_gateway(tmp_path, script, provider="anthropic",
                               env={"LYNKR_SERVER_TOOLS": "mcp"}) as gw:
        await gw.post("/v1/messages", ASK, headers=SESSION)  # no server yet: plain turn
        attached = await gw.post("/admin/mcp/servers", {"name": "time", "command": time_server})
        assert attached.status_code == 201, attached.text
        answer = (await gw.post("/v1/messages", ASK, headers=SESSION)).json()
        bodies = _upstream_bodies(gw)
    assert [t["name"] for t in bodies[0]["tools"]] == ["Bash"]
    assert "mcp_time_get_current_time" in [t["name"] for t in bodies[1]["tools"]]
    result = bodies[2]["messages"][-1]["content"][0]
    assert result["tool_use_id"] == "toolu_t1"
    assert not result["is_error"]
    assert '"timezone": "UTC"' in result["content"]
    assert answer["content"][-1]["text"] == "It is late."


async def test_the_client_leaving_cancels_the_running_tool(tmp_path):
    slow = {"name": "workspace_test_run", "arguments": {}, "id": "toolu_slow"}
    env = {"LYNKR_SERVER_TOOLS": "tests", "WORKSPACE_TEST_COMMAND": "sleep 31.25"}
    async with running_gateway(tmp_path, [{"text": "Testing.", "tool_calls": [slow]}],
                               provider="anthropic", env=env) as gw:
        with trio.move_on_after(1.5):  # the client gives up while the tests run
            await gw.post("/v1/messages", {**ASK, "stream": True}, headers=SESSION)
        with trio.fail_after(10):
            while not any(isinstance(e, StreamAborted) for e in await _events(gw)):  # noqa: ASYNC110
                await trio.sleep(0.05)
        events = await _events(gw)
    interrupted = [e for e in events if isinstance(e, ToolCallInterrupted)]
    assert [(e.tool, e.reason, e.effects_possible) for e in interrupted] == [
        ("workspace_test_run", "client_disconnected", True)]
    running = await trio.run_process(["pgrep", "-f", "sleep 31.25"], capture_stdout=True,
                                     check=False)
    assert running.stdout == b""  # the test command's process group was killed
    assert not any(isinstance(e, ToolCompleted) for e in events)
    assert [e.reason for e in events if isinstance(e, StreamAborted)] == ["client_disconnected"]


async def test_openai_dialect_streams_through_the_loop(tmp_path):
    script = [{"text": "One moment.", "tool_calls": [_create("call_o1")], "chunks": 3},
              {"text": "Task created.", "chunks": 3}]
    async with running_gateway(tmp_path, script, env=TASKS) as gw:
        response = await gw.post("/v1/messages", {**ASK, "stream": True}, headers=SESSION)
        upstream = [r["body"] for r in gw.fake.requests
                    if r["path"].endswith("/chat/completions")]
    frames = _sse(response.text)
    text = "".join(d["delta"]["text"] for k, d in frames
                   if k == "content_block_delta" and d["delta"]["type"] == "text_delta")
    assert text == "One moment.Task created."
    assert [k for k, _ in frames].count("message_start") == 1
    second = upstream[1]["messages"]
    assert second[-2]["tool_calls"][0]["id"] == "call_o1"
    assert second[-1] == {"role": "tool", "tool_call_id": "call_o1",
                          "content": second[-1]["content"]}


async def test_a_json_client_leaving_mid_tool_ends_the_turn(tmp_path):
    slow = {"name": "workspace_test_run", "arguments": {}, "id": "toolu_slowjson"}
    env = {"LYNKR_SERVER_TOOLS": "tests", "WORKSPACE_TEST_COMMAND": "sleep 32.5"}
    async with running_gateway(tmp_path, [{"text": "", "tool_calls": [slow]}],
                               provider="anthropic", env=env) as gw:
        with trio.move_on_after(1.5):
            await gw.post("/v1/messages", ASK, headers=SESSION)
        with trio.fail_after(10):
            while not any(isinstance(e, StreamAborted) for e in await _events(gw)):  # noqa: ASYNC110
                await trio.sleep(0.05)
        events = await _events(gw)
    interrupted = [e.reason for e in events if isinstance(e, ToolCallInterrupted)]
    assert interrupted == ["client_disconnected"]
    assert [e.reason for e in events if isinstance(e, StreamAborted)] == ["client_disconnected"]


async def test_the_prompt_cache_keeps_answers_given_without_server_steps(tmp_path):
    env = {**TASKS, "PROMPT_CACHE_ENABLED": "true"}
    script = [{"text": "Nothing to do."},
              {"text": "", "tool_calls": [_create("toolu_k1")]}, {"text": "Added."}]
    plain = {**ASK, "messages": [{"role": "user", "content": "anything?"}]}
    async with running_gateway(tmp_path, script, provider="anthropic", env=env) as gw:
        first = (await gw.post("/v1/messages", plain, headers=SESSION)).json()
        again = (await gw.post("/v1/messages", plain, headers=SESSION)).json()
        await gw.post("/v1/messages", ASK, headers=SESSION)  # ran a server step
        await gw.post("/v1/messages", ASK, headers=SESSION)  # so this asks the upstream
        bodies = _upstream_bodies(gw)
        events = await _events(gw)
    assert again["content"] == first["content"]
    assert again["usage"]["cache_read_input_tokens"] > 0
    assert len(bodies) == 4  # the question, none for its hit, two steps, the repeat
    assert sum(isinstance(e, CacheHit) for e in events) == 1


async def test_a_stream_is_pinged_while_a_slow_tool_runs(tmp_path, monkeypatch):
    """A 2 s test run inside a streamed turn: pings keep the stream alive between the steps."""
    monkeypatch.setattr(loop_module, "LOOP_PING_INTERVAL_S", 0.25)
    slow = {"name": "workspace_test_run", "arguments": {}, "id": "toolu_ping"}
    env = {"LYNKR_SERVER_TOOLS": "tests", "WORKSPACE_TEST_COMMAND": "sleep 2"}
    script = [{"text": "Testing.", "tool_calls": [slow]}, {"text": "All green."}]
    async with running_gateway(tmp_path, script, provider="anthropic", env=env) as gw:
        response = await gw.post("/v1/messages", {**ASK, "stream": True}, headers=SESSION)
        events = await _events(gw)
    frames = _sse(response.text)
    kinds = [k for k, _ in frames]
    texts = [i for i, (k, d) in enumerate(frames)
             if k == "content_block_delta" and d["delta"]["type"] == "text_delta"]
    between = kinds[texts[0]:texts[-1]]  # the upstream's own pings come before the text
    assert between.count("ping") >= 4, kinds  # 2 s at 0.25 s: about 8
    assert all(d == {"type": "ping"} for k, d in frames if k == "ping")
    assert kinds[-1] == "message_stop"
    assert [type(e).__name__ for e in events if isinstance(e, ToolCompleted | ModelResponded)
            ] == ["ToolCompleted", "ModelResponded"]
