"""The scripted fake upstream in tools/: formats, faults, recording, scripts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from lynkr.providers import AnthropicStreamAssembler, OpenAIStreamTranslator
from tools.fake_upstream import serve_fake_upstream

ROOT = Path(__file__).resolve().parents[2]
HI = {"model": "gpt-x", "messages": [{"role": "user", "content": "hello"}]}
BASH = {"name": "Bash", "arguments": {"command": "echo hi"}}


@pytest.fixture
async def fake(nursery):
    """A fake upstream served in-process on 127.0.0.1:0."""
    return await nursery.start(serve_fake_upstream)


async def _post(fake, path, body, **kw):
    async with httpx.AsyncClient(base_url=fake.url, timeout=5) as client:
        return await client.post(path, json=body, **kw)


async def _stream_bytes(fake, path, body):
    """The raw streamed body, and whether the connection broke before it ended."""
    data = b""
    async with httpx.AsyncClient(base_url=fake.url, timeout=5) as client:
        try:
            async with client.stream("POST", path, json={**body, "stream": True}) as resp:
                async for piece in resp.aiter_raw():
                    data += piece
        except httpx.RemoteProtocolError:
            return data, True
    return data, False


async def test_default_reply_echoes_the_last_user_message(fake):
    """Without a script, the OpenAI route echoes the user's text."""
    resp = await _post(fake, "/v1/chat/completions", HI)
    assert resp.json()["choices"][0]["message"]["content"] == "You said: hello"


async def test_default_stream_translates_to_a_complete_anthropic_message(fake):
    """The default stream is valid OpenAI SSE: it translates to a complete message."""
    data, broken = await _stream_bytes(fake, "/v1/chat/completions", HI)
    tr = OpenAIStreamTranslator(model="claude")
    tr.feed(data)
    tr.end()
    assert not broken
    assert tr.outcome.complete
    assert tr.outcome.message["content"] == [{"type": "text", "text": "You said: hello"}]


async def test_interleaved_parallel_tool_calls_are_scripted(fake):
    """An interleaved script streams two tool calls whose deltas alternate."""
    fake.set_script([{"tool_calls": [BASH, {"name": "Read", "arguments": {"file_path": "/a"}}],
                      "interleave": True}])
    data, _ = await _stream_bytes(fake, "/v1/chat/completions", HI)
    indexes = [json.loads(line[6:])["choices"][0]["delta"]["tool_calls"][0]["index"]
               for line in data.decode().splitlines()
               if line.startswith("data: {") and '"tool_calls":[' in line]
    assert indexes[2:6] == [0, 1, 0, 1]
    tr = OpenAIStreamTranslator(model="claude")
    tr.feed(data)
    tr.end()
    assert [b["name"] for b in tr.outcome.message["content"]] == ["Bash", "Read"]


async def test_cut_fault_drops_the_connection_mid_tool_call(fake):
    """A cut step breaks the connection inside a tool call's arguments."""
    fake.set_script([{"tool_calls": [BASH], "fault": "cut"}])
    data, broken = await _stream_bytes(fake, "/v1/chat/completions", HI)
    assert broken
    tr = OpenAIStreamTranslator(model="claude")
    tr.feed(data)
    tr.end()
    assert tr.outcome.error_type == "api_error"


@pytest.mark.parametrize("fault", ["malformed", "no_finish"])
async def test_stream_faults_fail_the_translation(fake, fault):
    """Malformed chunks and missing finish reasons are scripted faults."""
    fake.set_script([{"text": "some words here", "fault": fault}])
    data, broken = await _stream_bytes(fake, "/v1/chat/completions", HI)
    tr = OpenAIStreamTranslator(model="claude")
    tr.feed(data)
    tr.end()
    assert not broken
    assert not tr.outcome.complete


async def test_429_carries_retry_after_in_each_format(fake):
    """Status faults answer with the route's error body and a retry-after header."""
    fake.set_script([{"status": 429, "retry_after": 3, "times": 3}])
    openai = await _post(fake, "/v1/chat/completions", HI)
    databricks = await _post(fake, "/serving-endpoints/claude/invocations", HI)
    anthropic = await _post(fake, "/v1/messages", {**HI, "max_tokens": 5})
    assert {r.status_code for r in (openai, databricks, anthropic)} == {429}
    assert openai.headers["retry-after"] == "3"
    assert openai.json()["error"]["type"] == "rate_limit_error"
    assert databricks.json() == {"error_code": "REQUEST_LIMIT_EXCEEDED",
                                 "message": "fake upstream error 429"}
    assert anthropic.json()["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize(("status", "kind"), [(500, "api_error"), (503, "overloaded_error"),
                                              (529, "overloaded_error")])
async def test_server_faults_use_anthropic_error_types(fake, status, kind):
    """5xx faults on the Anthropic route carry Anthropic's error types."""
    fake.set_script([{"status": status}])
    resp = await _post(fake, "/anthropic/v1/messages", {**HI, "max_tokens": 5})
    assert resp.status_code == status
    assert resp.json()["error"]["type"] == kind


async def test_slow_first_byte_is_delayed(fake, autojump_clock):
    """A delay step holds the answer back by that many seconds."""
    fake.set_script([{"delay": 0.3}])
    start = trio.current_time()
    await _post(fake, "/v1/chat/completions", HI)
    assert trio.current_time() - start >= 0.3


async def test_anthropic_stream_assembles_with_reasoning_and_tools(fake):
    """The Anthropic route streams signed thinking, text and a Bash tool_use."""
    fake.set_script([{"reasoning": "plan", "text": "running", "tool_calls": [BASH]}])
    data, _ = await _stream_bytes(fake, "/v1/messages", {**HI, "max_tokens": 5})
    asm = AnthropicStreamAssembler()
    asm.feed(data)
    asm.end()
    content = asm.outcome.message["content"]
    assert [b["type"] for b in content] == ["thinking", "text", "tool_use"]
    assert content[0]["signature"] == "fake-signature"
    assert content[2]["input"] == {"command": "echo hi"}


async def test_count_tokens_route_answers_input_tokens(fake):
    """count_tokens answers {"input_tokens": N}."""
    resp = await _post(fake, "/v1/messages/count_tokens", HI)
    assert resp.json()["input_tokens"] > 0


async def test_requests_are_recorded_and_resettable(fake):
    """GET /_requests lists bodies and headers; DELETE forgets them."""
    await _post(fake, "/v1/chat/completions", HI, headers={"authorization": "Bearer k"})
    async with httpx.AsyncClient(base_url=fake.url) as client:
        seen = (await client.get("/_requests")).json()
        assert seen[0]["body"] == HI
        assert seen[0]["headers"]["authorization"] == "Bearer k"
        await client.delete("/_requests")
        assert (await client.get("/_requests")).json() == []


async def test_script_can_be_replaced_over_http(fake):
    """POST /_script queues new steps; a bad script is a 400."""
    async with httpx.AsyncClient(base_url=fake.url) as client:
        assert (await client.post("/_script", json=[{"text": "one"}])).json() == {"queued": 1}
        assert (await client.post("/_script", json={"responses": 5})).status_code == 400
    resp = await _post(fake, "/v1/chat/completions", HI)
    assert resp.json()["choices"][0]["message"]["content"] == "one"


def test_command_line_prints_listening_and_serves(tmp_path):
    """`python tools/fake_upstream.py --port 0 --script F` prints LISTENING <port>."""
    script = tmp_path / "s.json"
    script.write_text(json.dumps({"responses": [{"text": "scripted"}]}))
    proc = subprocess.Popen([sys.executable, str(ROOT / "tools" / "fake_upstream.py"),
                             "--port", "0", "--script", str(script)],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("LISTENING ")
        port = int(line.split()[1])
        resp = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=HI, timeout=5)
        assert resp.json()["choices"][0]["message"]["content"] == "scripted"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


def test_command_line_rejects_a_bad_script_with_exit_code_2(tmp_path):
    """A script that is not valid JSON is one clear line and exit code 2."""
    script = tmp_path / "bad.json"
    script.write_text("{nope")
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "fake_upstream.py"),
                             "--script", str(script)], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 2
    assert "bad script" in result.stderr
