"""The official anthropic SDK parses what the translators produce."""

from __future__ import annotations

import json

import anthropic
import httpx2

from lynkr.providers import OpenAIStreamTranslator, from_openai_response

from ._helpers import openai_chunk


def _client(body: bytes, content_type: str) -> anthropic.Anthropic:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body, headers={"content-type": content_type})
    return anthropic.Anthropic(api_key="test", base_url="http://lynkr.test", max_retries=0,
                               http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))


def _tool(index, **function):
    call = {"index": index, "function": {"arguments": function.pop("args", "")}}
    if function:
        call.update(id=f"call_{index}", type="function")
        call["function"].update(function)
    return openai_chunk({"tool_calls": [call]})


def test_sdk_stream_accumulates_the_translated_interleaved_stream():
    """messages.stream() accumulates thinking, text and two interleaved tool calls."""
    tr = OpenAIStreamTranslator(model="lynkr-test-model")
    frames = [openai_chunk({"reasoning_content": "think"}), openai_chunk({"content": "Hi"}),
              _tool(0, name="Bash"), _tool(1, name="Read"), _tool(0, args='{"command":"ls"}'),
              _tool(1, args='{"file_path":"/a"}'), openai_chunk({}, "tool_calls"),
              b"data: [DONE]\n\n"]
    body = b"".join(tr.feed(f) for f in frames) + tr.end() + tr.stop_frame
    client = _client(body, "text/event-stream")
    with client.messages.stream(model="lynkr-test-model", max_tokens=10,
                                messages=[{"role": "user", "content": "x"}]) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert final.content[2].input == {"command": "ls"}
    assert final.content[3].input == {"file_path": "/a"}
    assert final.stop_reason == "tool_use"
    assert final.model_dump(exclude_none=True)["content"] == \
        tr.outcome.message["content"]


def test_sdk_parses_the_non_streaming_translation():
    """messages.create() parses a translated non-streaming response."""
    completion = {"id": "c1", "choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "hello"}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2}}

    data = json.dumps(from_openai_response(completion, model="lynkr-test-small")).encode()
    message = _client(data, "application/json").messages.create(
        model="lynkr-test-small", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert message.content[0].text == "hello"
    assert message.usage.input_tokens == 9
    assert message.model == "lynkr-test-small"
