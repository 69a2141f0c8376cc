"""OpenAI chat completion → Anthropic response."""

from __future__ import annotations

import pytest

from lynkr.errors import UpstreamError
from lynkr.providers import UnknownParts, from_openai_response


def _completion(message, finish="stop", **extra):
    return {"id": "chatcmpl-9", "choices": [{"index": 0, "message": message,
                                             "finish_reason": finish}], **extra}


def test_text_answer_becomes_a_text_block_with_the_clients_model():
    """Content becomes a text block; the model is the one the client asked for."""
    out = from_openai_response(_completion({"role": "assistant", "content": "hi"}),
                               model="claude-opus-4")
    assert out["model"] == "claude-opus-4"
    assert out["content"] == [{"type": "text", "text": "hi"}]
    assert out["stop_reason"] == "end_turn"
    assert out["id"] == "msg_chatcmpl-9"


def test_tool_calls_become_tool_use_blocks():
    """Each tool call becomes a tool_use block with parsed input, stop_reason tool_use."""
    message = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "Bash", "arguments": '{"command":"ls"}'}},
        {"id": "call_2", "type": "function", "function": {"name": "Noop", "arguments": ""}}]}
    out = from_openai_response(_completion(message, "tool_calls"), model="c")
    assert out["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "Bash", "input": {"command": "ls"}},
        {"type": "tool_use", "id": "call_2", "name": "Noop", "input": {}}]
    assert out["stop_reason"] == "tool_use"


def test_tool_calls_with_finish_stop_still_report_tool_use():
    """A backend that says stop but returned tool calls reports tool_use."""
    message = {"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "A", "arguments": "{}"}}]}
    assert from_openai_response(_completion(message, "stop"), model="c")["stop_reason"] == \
        "tool_use"


def test_invalid_tool_arguments_are_an_upstream_error():
    """Arguments that are not a JSON object are an UpstreamError, never a garbage tool run."""
    message = {"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "A", "arguments": "{oops"}}]}
    with pytest.raises(UpstreamError, match="not valid JSON"):
        from_openai_response(_completion(message, "tool_calls"), model="c")


def test_reasoning_becomes_an_unsigned_thinking_block_first():
    """reasoning_content (or reasoning) becomes a thinking block with an empty signature."""
    out = from_openai_response(_completion({"role": "assistant", "reasoning": "why",
                                            "content": "a"}), model="c")
    assert out["content"][0] == {"type": "thinking", "thinking": "why", "signature": ""}


@pytest.mark.parametrize(("finish", "stop"), [
    ("stop", "end_turn"), ("length", "max_tokens"), ("content_filter", "refusal"),
    ("tool_calls", "tool_use"), ("something_new", "end_turn")])
def test_finish_reason_maps_to_stop_reason(finish, stop):
    """Each finish_reason has its stop_reason."""
    out = from_openai_response(_completion({"role": "assistant", "content": "x"}, finish),
                               model="c")
    assert out["stop_reason"] == stop


def test_matched_stop_sequence_is_reported():
    """A backend naming the matched stop string gives stop_reason stop_sequence."""
    completion = _completion({"role": "assistant", "content": "x"})
    completion["choices"][0]["stop_reason"] = "END"
    out = from_openai_response(completion, model="c", stop_sequences=["END"])
    assert (out["stop_reason"], out["stop_sequence"]) == ("stop_sequence", "END")


def test_cached_prompt_tokens_are_split_out_of_input_tokens():
    """cached_tokens are subtracted from input and reported as cache reads."""
    usage = {"prompt_tokens": 1000, "completion_tokens": 5,
             "prompt_tokens_details": {"cached_tokens": 800}}
    out = from_openai_response(_completion({"role": "assistant", "content": "x"}, usage=usage),
                               model="c")
    assert out["usage"] == {"input_tokens": 200, "output_tokens": 5,
                            "cache_read_input_tokens": 800}


def test_completion_without_choices_is_an_upstream_error():
    """A body without choices is an UpstreamError."""
    with pytest.raises(UpstreamError, match="without choices"):
        from_openai_response({"id": "x", "choices": []}, model="c")


def test_databricks_content_list_keeps_signed_thinking_and_tool_calls():
    """A content list with a signed reasoning summary keeps the thinking and its signature,
    then the text, then the tool call."""
    message = {"role": "assistant", "content": [
        {"type": "reasoning", "summary": [
            {"type": "summary_text", "text": "Need the weather.", "signature": "U0lH"}]},
        {"type": "text", "text": "Checking."}],
        "tool_calls": [{"id": "toolu_bdrk_1", "type": "function", "function": {
            "name": "get_weather", "arguments": '{"city":"Oslo"}'}}]}
    out = from_openai_response(_completion(message, "tool_calls"), model="c")
    assert out["content"] == [
        {"type": "thinking", "thinking": "Need the weather.", "signature": "U0lH"},
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_bdrk_1", "name": "get_weather",
         "input": {"city": "Oslo"}}]
    assert out["stop_reason"] == "tool_use"


def test_refusal_message_is_text_with_stop_reason_refusal():
    """OpenAI's refusal field is delivered as text with stop_reason refusal."""
    out = from_openai_response(_completion({"role": "assistant", "content": None,
                                            "refusal": "I can't."}, "stop"), model="c")
    assert out["content"] == [{"type": "text", "text": "I can't."}]
    assert out["stop_reason"] == "refusal"


def test_unknown_only_content_is_an_upstream_error_naming_it():
    """An answer whose only content is unknown is a 502 naming the part type."""
    message = {"role": "assistant", "content": [{"type": "hologram", "blob": "x"}]}
    with pytest.raises(UpstreamError, match="hologram") as caught:
        from_openai_response(_completion(message, "stop"), model="c")
    assert caught.value.status == 502


def test_unknown_part_beside_text_is_noted():
    """An unknown part next to text: the text is kept and the part counted."""
    unknown = UnknownParts()
    message = {"role": "assistant", "content": [{"type": "hologram"},
                                                {"type": "text", "text": "hi"}]}
    out = from_openai_response(_completion(message, "stop"), model="c", unknown=unknown)
    assert out["content"] == [{"type": "text", "text": "hi"}]
    assert unknown.counts == {"hologram": 1}
