"""Anthropic request → OpenAI chat-completions request."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lynkr.errors import InvalidRequestError
from lynkr.providers import to_openai_request


def _req(**body):
    body.setdefault("model", "claude-sonnet-4-5")
    body.setdefault("max_tokens", 100)
    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    return body


def _msgs(**body):
    return to_openai_request(_req(**body), model="gpt-x")["messages"]


def test_model_is_the_mapped_backend_model():
    """The body asks the backend for the mapped model, not the client's name."""
    assert to_openai_request(_req(), model="gpt-x")["model"] == "gpt-x"


def test_system_blocks_become_one_leading_system_message():
    """System text blocks join into a single first system message; cache_control dropped."""
    system = [{"type": "text", "text": "a"},
              {"type": "text", "text": "b", "cache_control": {"type": "ephemeral"}}]
    assert _msgs(system=system)[0] == {"role": "system", "content": "a\n\nb"}


def test_mid_conversation_system_message_stays_in_place():
    """A role:system message inside the conversation stays a system message there."""
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"},
                {"role": "system", "content": [{"type": "text", "text": "note"}]},
                {"role": "user", "content": "q2"}]
    assert [m["role"] for m in _msgs(messages=messages)] == ["user", "assistant", "system", "user"]
    assert _msgs(messages=messages)[2]["content"] == "note"


def test_text_only_user_blocks_become_a_string():
    """A user message of text blocks is sent as plain text."""
    messages = [{"role": "user", "content": [{"type": "text", "text": "a"},
                                             {"type": "text", "text": "b"}]}]
    assert _msgs(messages=messages) == [{"role": "user", "content": "a\n\nb"}]


def test_images_become_image_url_parts():
    """Base64 images become data: URLs; URL images keep their URL."""
    messages = [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}},
        {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
        {"type": "text", "text": "what?"}]}]
    parts = _msgs(messages=messages)[0]["content"]
    assert parts[0] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}}
    assert parts[1] == {"type": "image_url", "image_url": {"url": "https://x/y.png"}}
    assert parts[2] == {"type": "text", "text": "what?"}


def _tool_turn(result_content, **extra):
    return [
        {"role": "user", "content": "run it"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "ok"},
            {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": result_content, **extra},
            {"type": "text", "text": "go on"}]},
    ]


def test_tool_use_becomes_assistant_tool_calls():
    """tool_use blocks become tool_calls with JSON-text arguments."""
    assistant = _msgs(messages=_tool_turn("x"))[1]
    assert assistant["content"] == "ok"
    call = assistant["tool_calls"][0]
    assert call["id"] == "toolu_1"
    assert call["function"]["name"] == "Bash"
    assert json.loads(call["function"]["arguments"]) == {"command": "ls"}


def test_tool_result_becomes_a_tool_message_right_after_the_assistant_turn():
    """The tool message comes directly after the assistant, before the user's text."""
    msgs = _msgs(messages=_tool_turn("file.txt"))
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool", "user"]
    assert msgs[2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "file.txt"}
    assert msgs[3]["content"] == "go on"


def test_tool_result_error_is_kept_in_the_text():
    """is_error:true marks the tool message text."""
    msgs = _msgs(messages=_tool_turn([{"type": "text", "text": "boom"}], is_error=True))
    assert msgs[2]["content"] == "ERROR: boom"


def test_images_in_tool_results_move_into_a_following_user_message():
    """A tool result's image moves to the user message after the tool messages."""
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": "QQ=="}}
    msgs = _msgs(messages=_tool_turn([{"type": "text", "text": "shot"}, image]))
    assert msgs[2]["content"] == "shot"
    parts = msgs[3]["content"]
    assert "toolu_1" in parts[0]["text"]
    assert parts[1]["type"] == "image_url"
    assert parts[-1] == {"type": "text", "text": "go on"}


def test_tool_definitions_drop_schema_keys_and_server_tools():
    """$schema is removed at every depth; Anthropic server tools are dropped."""
    tools = [
        {"name": "Bash", "description": "run", "input_schema": {
            "$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
            "properties": {"c": {"type": "string", "$schema": "x"}},
            "additionalProperties": False}},
        {"type": "web_search_20250305", "name": "web_search"},
    ]
    out = to_openai_request(_req(tools=tools), model="m")["tools"]
    assert out == [{"type": "function", "function": {
        "name": "Bash", "description": "run", "parameters": {
            "type": "object", "properties": {"c": {"type": "string"}},
            "additionalProperties": False}}}]


@pytest.mark.parametrize(("choice", "expected"), [
    ({"type": "auto"}, "auto"),
    ({"type": "any"}, "required"),
    ({"type": "none"}, "none"),
    ({"type": "tool", "name": "Bash"}, {"type": "function", "function": {"name": "Bash"}}),
])
def test_tool_choice_maps_to_openai(choice, expected):
    """auto/any/none/tool map to auto/required/none/a named function."""
    tools = [{"name": "Bash", "input_schema": {"type": "object"}}]
    assert to_openai_request(_req(tools=tools, tool_choice=choice), model="m")[
        "tool_choice"] == expected


def test_disable_parallel_tool_use_sets_parallel_tool_calls_false():
    """disable_parallel_tool_use becomes parallel_tool_calls: false."""
    tools = [{"name": "Bash", "input_schema": {"type": "object"}}]
    out = to_openai_request(_req(tools=tools, tool_choice={
        "type": "auto", "disable_parallel_tool_use": True}), model="m")
    assert out["parallel_tool_calls"] is False


def test_tool_choice_is_dropped_without_tools():
    """With no tool left, tool_choice is not sent."""
    out = to_openai_request(_req(tool_choice={"type": "any"}), model="m")
    assert "tool_choice" not in out
    assert "tools" not in out


_SIGNED = {"type": "thinking", "thinking": "hmm", "signature": "sig-abc"}


def _assistant_turn(*blocks):
    return [{"role": "user", "content": "q"}, {"role": "assistant", "content": list(blocks)}]


def test_signed_thinking_goes_back_as_a_reasoning_part():
    """Signed thinking is sent in Databricks' documented shape: a reasoning part with its
    signature, before the text, in the assistant message's content list."""
    messages = _assistant_turn(_SIGNED, {"type": "text", "text": "a"})
    sent = to_openai_request(_req(messages=messages), model="m")["messages"][1]
    assert sent["content"] == [
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "hmm",
                                           "signature": "sig-abc"}]},
        {"type": "text", "text": "a"}]
    assert "reasoning_content" not in sent


def test_redacted_thinking_goes_back_as_encrypted_summary():
    """redacted_thinking becomes a summary_encrypted_text item, next to the tool call."""
    messages = _assistant_turn(
        {"type": "redacted_thinking", "data": "ENC"},
        {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}})
    sent = to_openai_request(_req(messages=messages), model="m")["messages"][1]
    assert sent["content"] == [{"type": "reasoning", "summary": [
        {"type": "summary_encrypted_text", "data": "ENC"}]}]
    assert sent["tool_calls"][0]["function"]["name"] == "Bash"


def test_unsigned_thinking_is_dropped_or_sent_as_reasoning_content():
    """Unsigned thinking is dropped, or sent as reasoning_content when asked."""
    messages = _assistant_turn({"type": "thinking", "thinking": "hmm", "signature": ""},
                               {"type": "text", "text": "a"})
    plain = to_openai_request(_req(messages=messages), model="m")["messages"][1]
    assert plain == {"role": "assistant", "content": "a"}
    sent = to_openai_request(_req(messages=messages), model="m", reasoning="reasoning_content")
    assert sent["messages"][1]["reasoning_content"] == "hmm"


def test_reasoning_off_drops_signed_thinking():
    """With reasoning off no thinking block reaches the backend."""
    messages = _assistant_turn(_SIGNED, {"type": "text", "text": "a"})
    sent = to_openai_request(_req(messages=messages), model="m", reasoning="off")
    assert sent["messages"][1] == {"role": "assistant", "content": "a"}


def test_text_document_becomes_titled_text():
    """A text document (plain or content-list source) becomes text with its title."""
    content = [{"type": "document", "title": "notes", "source": {
        "type": "text", "media_type": "text/plain", "data": "body"}},
        {"type": "document", "source": {"type": "content", "content": [
            {"type": "text", "text": "one"}, {"type": "text", "text": "two"}]}},
        {"type": "text", "text": "summarise"}]
    out = to_openai_request(_req(messages=[{"role": "user", "content": content}]), model="m")
    assert out["messages"][0]["content"] == "Document: notes\n\nbody\n\none\n\ntwo\n\nsummarise"


def test_pdf_document_becomes_a_file_part_or_a_400():
    """A base64 PDF is a file part where the backend takes files, else a 400 naming it."""
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                          "data": "JVBERi0="}}
    body = _req(messages=[{"role": "user", "content": [pdf, {"type": "text", "text": "read"}]}])
    out = to_openai_request(body, model="m")
    assert out["messages"][0]["content"][0] == {"type": "file", "file": {
        "filename": "document.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}}
    with pytest.raises(InvalidRequestError, match="base64"):
        to_openai_request(body, model="m", pdf_files=False)


def test_search_result_becomes_text_naming_its_source():
    """A search_result block becomes text with its title and source."""
    block = {"type": "search_result", "source": "https://example.org/a", "title": "A",
             "content": [{"type": "text", "text": "found"}]}
    tool_result = {"type": "tool_result", "tool_use_id": "t1", "content": [block]}
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": [
        {"type": "tool_use", "id": "t1", "name": "search", "input": {}}]},
        {"role": "user", "content": [tool_result]}]
    out = to_openai_request(_req(messages=messages), model="m")
    assert out["messages"][2]["content"] == "Search result: A (https://example.org/a)\n\nfound"


@pytest.mark.parametrize("kind", ["server_tool_use", "web_search_tool_result",
                                  "container_upload", "brand_new_block"])
def test_blocks_without_a_faithful_conversion_are_refused(kind):
    """Anthropic-hosted tool blocks and unknown blocks are a 400 naming the type."""
    role = "assistant" if kind == "server_tool_use" else "user"
    messages = [{"role": "user", "content": "q"},
                {"role": role, "content": [{"type": kind, "id": "x"}]}]
    with pytest.raises(InvalidRequestError, match=kind) as caught:
        to_openai_request(_req(messages=messages), model="m")
    assert caught.value.status == 400


def test_output_config_format_becomes_response_format():
    """A json_schema output format becomes response_format json_schema."""
    schema = {"type": "object", "properties": {"title": {"type": "string"}}}
    out = to_openai_request(_req(output_config={"effort": "high", "format": {
        "type": "json_schema", "schema": schema}}), model="m")
    assert out["response_format"] == {"type": "json_schema",
                                      "json_schema": {"name": "output", "schema": schema}}
    assert "reasoning_effort" not in out


def test_stop_sequences_become_stop():
    """stop_sequences are sent as stop."""
    assert to_openai_request(_req(stop_sequences=["X"]), model="m")["stop"] == ["X"]


def test_max_tokens_is_clamped_only_to_the_configured_cap():
    """max_tokens passes as asked unless a backend cap is configured."""
    assert to_openai_request(_req(max_tokens=64000), model="m")["max_tokens"] == 64000
    capped = to_openai_request(_req(max_tokens=64000), model="m", max_tokens_cap=8192)
    assert capped["max_tokens"] == 8192


def test_anthropic_only_fields_are_dropped():
    """metadata, context_management, thinking and top_k never reach the backend."""
    out = to_openai_request(_req(metadata={"user_id": "{}"}, context_management={"edits": []},
                                 thinking={"type": "adaptive"}, top_k=5, temperature=0.2),
                            model="m")
    assert not {"metadata", "context_management", "thinking", "top_k"} & set(out)
    assert out["temperature"] == 0.2


def test_streaming_asks_for_usage():
    """stream:true adds stream_options.include_usage."""
    out = to_openai_request(_req(stream=True), model="m")
    assert out["stream"] is True
    assert out["stream_options"] == {"include_usage": True}


# --- property: structure of any tool conversation ----------------------------------------

_words = st.text(alphabet="abcdefgh ", min_size=1, max_size=12)


@st.composite
def _conversations(draw):
    messages = [{"role": "user", "content": draw(_words)}]
    for turn in range(draw(st.integers(0, 4))):
        calls = [{"type": "tool_use", "id": f"toolu_{turn}_{i}", "name": "Bash",
                  "input": {"command": draw(_words)}} for i in range(draw(st.integers(0, 3)))]
        text = [{"type": "text", "text": draw(_words)}] if draw(st.booleans()) or not calls else []
        messages.append({"role": "assistant", "content": text + calls})
        results = [{"type": "tool_result", "tool_use_id": c["id"], "content": draw(_words),
                    "is_error": draw(st.booleans())} for c in calls]
        extra = [{"type": "text", "text": draw(_words)}] if draw(st.booleans()) or not calls else []
        messages.append({"role": "user", "content": results + extra})
    return messages


@given(messages=_conversations())
def test_tool_messages_always_follow_their_assistant_turn(messages):
    """Every tool message sits in the run right after the assistant that called it."""
    out = to_openai_request(_req(messages=messages), model="m")["messages"]
    open_calls: set[str] = set()
    for message in out:
        if message["role"] == "assistant":
            open_calls = {c["id"] for c in message.get("tool_calls", [])}
        elif message["role"] == "tool":
            assert message["tool_call_id"] in open_calls
            open_calls.discard(message["tool_call_id"])
        else:
            assert not open_calls, "a tool call was left without its result"
            open_calls = set()
    n_results = sum(1 for m in messages if isinstance(m["content"], list)
                    for b in m["content"] if b["type"] == "tool_result")
    assert sum(1 for m in out if m["role"] == "tool") == n_results
