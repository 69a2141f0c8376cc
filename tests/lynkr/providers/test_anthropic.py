"""The Anthropic / Azure adapter: headers, betas, thinking, caps, model names."""

from __future__ import annotations

import json

from lynkr.providers._anthropic import AnthropicAdapter, AnthropicRelay
from lynkr.providers._settings import BackendSettings

AZURE = BackendSettings(name="azure-anthropic", url="https://x/anthropic/v1/messages",
                        api_key="az-key", api_version="2023-06-01",
                        base_url="https://x/anthropic/v1")
BODY = {"model": "claude-opus-4-6", "max_tokens": 64000, "stream": True, "messages": [
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": [{"type": "thinking", "thinking": "local", "signature": ""},
                                      {"type": "text", "text": "ok"}]},
    {"role": "user", "content": "more"}]}


def test_auth_version_and_filtered_betas():
    """x-api-key, anthropic-version, and anthropic-beta minus the dropped betas."""
    adapter = AnthropicAdapter(AZURE, drop_betas=("context-1m-2025-08-07",))
    request = adapter.build(BODY, "claude-opus-4-6", {
        "anthropic-beta": "claude-code-20250219,context-1m-2025-08-07", "x-api-key": "client"})
    assert request.headers["x-api-key"] == "az-key"
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["anthropic-beta"] == "claude-code-20250219"
    assert request.url == AZURE.url


def test_unsigned_thinking_is_never_sent_and_the_model_is_mapped():
    """Thinking without a signature is dropped; the backend model replaces the name."""
    request = AnthropicAdapter(AZURE).build(BODY, "my-deployment", {})
    sent = json.loads(request.body)
    assert sent["model"] == "my-deployment"
    assert sent["messages"][1]["content"] == [{"type": "text", "text": "ok"}]


def test_max_tokens_is_clamped_only_to_the_configured_cap():
    """No cap: sent as asked; a cap: clamped to it."""
    assert json.loads(AnthropicAdapter(AZURE).build(BODY, "m", {}).body)["max_tokens"] == 64000
    capped = AnthropicAdapter(AZURE, max_tokens_cap=8192).build(BODY, "m", {})
    assert json.loads(capped.body)["max_tokens"] == 8192


def test_the_stream_carries_the_requested_model_name():
    """message_start is re-encoded with the client's model; other frames pass through."""
    relay = AnthropicRelay("claude-opus-4-6")
    start = {"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "backend-x",
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 0}}}
    ping = b"event: ping\ndata: {\"type\":\"ping\"}\n\n"
    out = relay.feed(b"event: message_start\ndata: " + json.dumps(start).encode() + b"\n\n"
                     + ping)
    assert b'"model":"claude-opus-4-6"' in out
    assert out.endswith(ping)


def test_a_non_streaming_answer_carries_the_requested_model():
    """parse() sets the model the client asked for."""
    body = {"type": "message", "model": "backend-x", "content": []}
    message = AnthropicAdapter(AZURE).parse(json.dumps(body).encode(), {"model": "claude-x"})
    assert message["model"] == "claude-x"


def test_signed_thinking_and_every_client_block_pass_unchanged():
    """To Anthropic-dialect backends, signed and redacted thinking and the blocks an
    OpenAI backend refuses (documents, search results, server tool blocks, container
    uploads) pass exactly as the client sent them."""
    assistant = [{"type": "thinking", "thinking": "plan", "signature": "U0lHTkVE"},
                 {"type": "redacted_thinking", "data": "RU5DUllQVEVE"},
                 {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search",
                  "input": {"query": "lynkr"}},
                 {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1",
                  "content": [{"type": "web_search_result", "url": "https://e.org",
                               "title": "E", "encrypted_content": "Q09OVEVOVA=="}]},
                 {"type": "text", "text": "found it"}]
    user = [{"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                            "data": "JVBERi0="}},
            {"type": "search_result", "source": "https://e.org", "title": "E",
             "content": [{"type": "text", "text": "x"}]},
            {"type": "container_upload", "file_id": "file_1"},
            {"type": "text", "text": "and now?"}]
    body = {"model": "claude-opus-4-6", "max_tokens": 100, "messages": [
        {"role": "user", "content": "search"}, {"role": "assistant", "content": assistant},
        {"role": "user", "content": user}]}
    sent = json.loads(AnthropicAdapter(AZURE).build(body, "m", {}).body)
    assert sent["messages"][1]["content"] == assistant
    assert sent["messages"][2]["content"] == user
