"""The OpenAI-compatible adapter: URL, auth only with a key, no Anthropic headers."""

from __future__ import annotations

import json

from lynkr.providers._openai import OpenAIAdapter
from lynkr.providers._settings import BackendSettings

LOCAL = BackendSettings(name="openai", url="http://127.0.0.1:11434/v1/chat/completions",
                        base_url="http://127.0.0.1:11434/v1")
BODY = {"model": "claude-sonnet-4-6", "max_tokens": 100, "stream": True,
        "messages": [{"role": "user", "content": "hi"}]}


def test_a_local_server_gets_no_authorization_header():
    """Without OPENAI_API_KEY nothing is sent as auth, and no anthropic header leaks."""
    request = OpenAIAdapter(LOCAL).build(BODY, "qwen", {"anthropic-beta": "x",
                                                        "x-api-key": "client"})
    assert "authorization" not in request.headers
    assert not any(k.startswith("anthropic") or k == "x-api-key" for k in request.headers)
    assert request.url == LOCAL.url


def test_a_key_is_sent_as_a_bearer_token():
    """OPENAI_API_KEY becomes `Authorization: Bearer …`."""
    keyed = BackendSettings(name="openai", url=LOCAL.url, api_key="sk-1")
    assert OpenAIAdapter(keyed).build(BODY, "m", {}).headers["authorization"] == "Bearer sk-1"


def test_the_body_is_translated_with_the_backend_model_and_usage_option():
    """The chat body names the backend model and asks for usage in the stream."""
    sent = json.loads(OpenAIAdapter(LOCAL).build(BODY, "qwen", {}).body)
    assert sent["model"] == "qwen"
    assert sent["stream_options"] == {"include_usage": True}


def test_a_completion_is_answered_with_the_requested_model():
    """parse() translates and echoes the client's model name."""
    completion = {"id": "c1", "choices": [{"message": {"role": "assistant", "content": "yo"},
                                           "finish_reason": "stop"}],
                  "usage": {"prompt_tokens": 3, "completion_tokens": 1}}
    message = OpenAIAdapter(LOCAL).parse(json.dumps(completion).encode(), BODY)
    assert message["model"] == "claude-sonnet-4-6"
    assert message["content"] == [{"type": "text", "text": "yo"}]
