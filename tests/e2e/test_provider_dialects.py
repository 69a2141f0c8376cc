"""Every provider dialect through a real `lynkr serve`, read with the official `anthropic` SDK.

The fake upstream replays each answer of `tests/e2e/dialects.py` verbatim (`raw_chunks` /
`raw_body`); the client must get the text, tool calls (name and parsed input), stop
reason and thinking (text and signature; encrypted reasoning as `redacted_thinking`)
exactly as the backend sent them — streaming and not. An answer made only of a part
Lynkr does not know is an error for the client, never an empty message; an unknown part
next to text lets the text through and is counted in the turn's `ModelResponded`.

One fake upstream and one gateway per backend serve the whole module.
Run with: `.venv/bin/python -m pytest tests/e2e/test_provider_dialects.py -q`
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from eventstore import SqliteRecorder
from eventstore.events.session import ModelResponded
from tests.e2e.dialects import DBX_SIG, DBX_TOOL_THINK, DIALECTS, Dialect, chunk, completion
from tests.e2e.processes import gateway_processes

pytestmark = pytest.mark.slow

MODEL = "claude-sonnet-4-6"
QUESTION = [{"role": "user", "content": "Please answer."}]
HOLOGRAM = {"type": "hologram", "frames": [3, 1, 4], "encoding": "voxel"}
STILL_HERE = "The answer survives an unknown part."


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    """A fake upstream and `lynkr serve` for each backend, shared by the module."""
    with gateway_processes(tmp_path_factory.mktemp("openai"), provider="openai") as openai, \
            gateway_processes(tmp_path_factory.mktemp("dbx"), provider="databricks") as dbx:
        yield {"openai": openai, "databricks": dbx}


def _script(stack: dict[str, Any], step: dict[str, Any]) -> None:
    """Replace the fake's script with one step, and forget the requests it saw."""
    httpx.delete(stack["fake"] + "/_requests").raise_for_status()
    httpx.post(stack["fake"] + "/_script", json={"responses": [step]}).raise_for_status()


def _client(stack: dict[str, Any]) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=stack["url"], api_key="x", max_retries=0, timeout=30)


def _blocks(message: Any) -> list[dict[str, Any]]:
    """The message's content blocks, reduced to what a dialect fixture pins."""
    out: list[dict[str, Any]] = []
    for block in message.content:
        if block.type == "text":
            out.append({"type": "text", "text": block.text})
        elif block.type == "thinking":
            out.append({"type": "thinking", "thinking": block.thinking,
                        "signature": block.signature})
        elif block.type == "redacted_thinking":
            out.append({"type": "redacted_thinking", "data": block.data})
        elif block.type == "tool_use":
            assert block.id, "every tool_use block needs an id"
            out.append({"type": "tool_use", "name": block.name, "input": block.input})
        else:
            out.append({"type": block.type})
    return out


def _create(stack: dict[str, Any], tools: list[dict[str, Any]], **extra: Any) -> Any:
    with _client(stack) as client:
        return client.messages.create(model=MODEL, max_tokens=1024, messages=QUESTION,
                                      **({"tools": tools} if tools else {}), **extra)


def _stream(stack: dict[str, Any], tools: list[dict[str, Any]]) -> tuple[Any, list[str]]:
    """The streamed message as the SDK assembles it, and the raw event types seen."""
    with _client(stack) as client, client.messages.stream(
            model=MODEL, max_tokens=1024, messages=QUESTION,
            **({"tools": tools} if tools else {})) as stream:
        kinds = [event.type for event in stream]
        return stream.get_final_message(), kinds


def _last_model_responded(stack: dict[str, Any], after: int) -> ModelResponded:
    recorder = SqliteRecorder(stack["db"])
    try:
        found = [r.event for r in recorder.read_all(after_position=after, limit=10_000)
                 if isinstance(r.event, ModelResponded)]
    finally:
        recorder.close()
    assert found, "the turn recorded no ModelResponded"
    return found[-1]


def _log_position(stack: dict[str, Any]) -> int:
    recorder = SqliteRecorder(stack["db"])
    try:
        return recorder.last_position()
    finally:
        recorder.close()


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_a_non_streaming_answer_arrives_exactly(stacks, dialect: Dialect):
    """The body's text, tool calls, thinking (with signature) and stop reason arrive as sent."""
    stack = stacks[dialect.provider]
    _script(stack, {"raw_body": dialect.body})
    message = _create(stack, dialect.tools)
    assert _blocks(message) == dialect.content
    assert message.stop_reason == dialect.stop_reason


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_a_streamed_answer_arrives_exactly(stacks, dialect: Dialect):
    """The stream's text, tool calls, thinking (with signature) and stop reason arrive as sent."""
    stack = stacks[dialect.provider]
    _script(stack, {"raw_chunks": dialect.chunks})
    message, kinds = _stream(stack, dialect.tools)
    assert _blocks(message) == dialect.content
    assert message.stop_reason == dialect.stop_reason
    signed = any(b["type"] == "thinking" and b["signature"] for b in dialect.content)
    assert ("signature" in kinds) == signed  # a signature_delta exactly when one was sent
    assert kinds[-1] == "message_stop"


@pytest.mark.parametrize("provider", ["openai", "databricks"])
def test_an_answer_of_only_an_unknown_part_is_a_502_naming_it(stacks, provider):
    """Non-streaming: content only in a shape Lynkr cannot translate is a 502 api_error."""
    stack = stacks[provider]
    _script(stack, {"raw_body": completion({"content": [HOLOGRAM]}, "stop")})
    with pytest.raises(anthropic.APIStatusError) as caught:
        _create(stack, [])
    assert caught.value.status_code == 502
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["error"]["type"] == "api_error"
    assert "hologram" in body["error"]["message"]


@pytest.mark.parametrize("provider", ["openai", "databricks"])
def test_a_stream_of_only_an_unknown_part_ends_in_an_error_event(stacks, provider):
    """Streaming: the SDK raises on the SSE error event naming the part; no empty message."""
    stack = stacks[provider]
    # the same answer every time: the gateway may retry a stream that failed early
    _script(stack, {"raw_chunks": [chunk({"role": "assistant", "content": [HOLOGRAM]}),
                                   chunk({"content": ""}, "stop"), "[DONE]"], "times": 3})
    with pytest.raises(anthropic.APIStatusError, match="hologram") as caught:
        _stream(stack, [])
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["error"]["type"] == "api_error"


def test_an_unknown_part_beside_text_lets_the_text_through_non_streaming(stacks):
    """The text arrives, and the turn's ModelResponded counts the unknown part."""
    stack = stacks["openai"]
    before = _log_position(stack)
    _script(stack, {"raw_body": completion(
        {"content": [HOLOGRAM, {"type": "text", "text": STILL_HERE}]}, "stop")})
    message = _create(stack, [])
    assert _blocks(message) == [{"type": "text", "text": STILL_HERE}]
    assert message.stop_reason == "end_turn"
    assert _last_model_responded(stack, before).unknown_parts == {"hologram": 1}


def test_an_unknown_part_beside_text_lets_the_text_through_streaming(stacks):
    """Streamed: the text arrives, and the turn's ModelResponded counts the unknown part."""
    stack = stacks["databricks"]
    before = _log_position(stack)
    _script(stack, {"raw_chunks": [
        chunk({"role": "assistant", "content": [HOLOGRAM]}),
        chunk({"content": [{"type": "text", "text": STILL_HERE}]}),
        chunk({"content": ""}, "stop"), "[DONE]"]})
    message, _ = _stream(stack, [])
    assert _blocks(message) == [{"type": "text", "text": STILL_HERE}]
    assert _last_model_responded(stack, before).unknown_parts == {"hologram": 1}


def test_signed_thinking_goes_back_to_databricks_as_a_reasoning_part(stacks):
    """Turn two of thinking + tool use: the signed thinking reaches the upstream with its
    signature, in the assistant message's content list, and `thinking` is passed on."""
    stack = stacks["databricks"]
    _script(stack, {"raw_body": completion({"content": "Three days of sun."}, "stop")})
    history = [
        *QUESTION,
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": DBX_TOOL_THINK, "signature": DBX_SIG},
            {"type": "tool_use", "id": "toolu_01Forecast", "name": "get_forecast",
             "input": {"city": "Zermatt", "days": 3}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01Forecast",
                                      "content": "sunny, sunny, sunny"}]},
    ]
    with _client(stack) as client:
        message = client.messages.create(
            model=MODEL, max_tokens=4096, messages=history,
            thinking={"type": "enabled", "budget_tokens": 2048},
            tools=[{"name": "get_forecast", "input_schema": {"type": "object"}}])
    assert _blocks(message) == [{"type": "text", "text": "Three days of sun."}]
    sent = httpx.get(stack["fake"] + "/_requests").json()[-1]["body"]
    assistant = next(m for m in sent["messages"] if m["role"] == "assistant")
    assert {"type": "reasoning", "summary": [
        {"type": "summary_text", "text": DBX_TOOL_THINK, "signature": DBX_SIG}]} in (
        assistant["content"])
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}
