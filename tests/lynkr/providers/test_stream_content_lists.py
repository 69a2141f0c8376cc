"""Streams whose deltas carry content lists (Databricks Claude reasoning, Mistral
thinking), refusals, and parts Lynkr does not know."""

from __future__ import annotations

from lynkr.providers import OpenAIStreamTranslator

from ._helpers import assert_well_formed, openai_chunk, sse_events

DONE = b"data: [DONE]\n\n"


def _run(*frames: bytes) -> tuple[OpenAIStreamTranslator, list]:
    tr = OpenAIStreamTranslator(model="claude-sonnet-4-5")
    out = b"".join(tr.feed(f) for f in frames) + tr.end()
    return tr, sse_events(out)


def _summary(text: str, signature: str = "") -> bytes:
    return openai_chunk({"role": "assistant", "content": [{"type": "reasoning", "summary": [
        {"type": "summary_text", "text": text, "signature": signature}]}]})


def test_databricks_reasoning_stream_gives_signed_thinking_then_text():
    """Reasoning summaries stream as thinking deltas, the signature as a signature_delta,
    then the text: the content the issue saw dropped entirely."""
    tr, events = _run(_summary("Adding "), _summary("the numbers."), _summary("", "c2ln"),
                      openai_chunk({"role": "assistant", "content": "It is 42."}),
                      openai_chunk({"content": ""}, "stop"), DONE)
    assert_well_formed(events)
    deltas = [e["delta"] for n, e in events if n == "content_block_delta"]
    assert deltas == [{"type": "thinking_delta", "thinking": "Adding "},
                      {"type": "thinking_delta", "thinking": "the numbers."},
                      {"type": "signature_delta", "signature": "c2ln"},
                      {"type": "text_delta", "text": "It is 42."}]
    assert tr.outcome.message["content"] == [
        {"type": "thinking", "thinking": "Adding the numbers.", "signature": "c2ln"},
        {"type": "text", "text": "It is 42."}]
    assert tr.outcome.message["stop_reason"] == "end_turn"


def test_text_as_content_list_parts_streams_as_text():
    """Text that arrives as list parts streams like string text."""
    tr, _ = _run(openai_chunk({"content": [{"type": "text", "text": "Hel"}]}),
                 openai_chunk({"content": [{"type": "text", "text": "lo"}]}, "stop"), DONE)
    assert tr.outcome.message["content"] == [{"type": "text", "text": "Hello"}]


def test_mistral_thinking_parts_stream_as_unsigned_thinking():
    """Mistral's thinking parts are a thinking block with an empty signature."""
    tr, _ = _run(openai_chunk({"content": [{"type": "thinking", "thinking": [
        {"type": "text", "text": "Hmm"}]}]}),
        openai_chunk({"content": "Answer"}, "stop"), DONE)
    assert tr.outcome.message["content"] == [
        {"type": "thinking", "thinking": "Hmm", "signature": ""},
        {"type": "text", "text": "Answer"}]


def test_thinking_after_a_signed_block_starts_a_new_block():
    """A signature closes its thinking block; later reasoning is a block of its own."""
    tr, events = _run(_summary("one"), _summary("", "s1"), _summary("two"), _summary("", "s2"),
                      openai_chunk({"content": "x"}, "stop"), DONE)
    assert_well_formed(events)
    assert [b.get("signature") for b in tr.outcome.message["content"]] == ["s1", "s2", None]


def test_signature_while_a_tool_call_is_open_is_kept_with_its_thinking():
    """Reasoning buffered behind an open tool call keeps its signature."""
    call = {"index": 0, "id": "toolu_1", "type": "function",
            "function": {"name": "Bash", "arguments": "{}"}}
    tr, events = _run(openai_chunk({"tool_calls": [call]}), _summary("late"),
                      _summary("", "sig"), openai_chunk({}, "tool_calls"), DONE)
    assert_well_formed(events)
    content = tr.outcome.message["content"]
    assert content[1] == {"type": "thinking", "thinking": "late", "signature": "sig"}
    assert {"type": "signature_delta", "signature": "sig"} in [
        e["delta"] for n, e in events if n == "content_block_delta"]


def test_encrypted_reasoning_is_a_redacted_thinking_block():
    """summary_encrypted_text is sent whole as a redacted_thinking block."""
    encrypted = openai_chunk({"content": [{"type": "reasoning", "summary": [
        {"type": "summary_encrypted_text", "data": "RU5D"}]}]})
    tr, events = _run(encrypted, openai_chunk({"content": "ok"}, "stop"), DONE)
    assert_well_formed(events)
    starts = [e["content_block"] for n, e in events if n == "content_block_start"]
    assert starts[0] == {"type": "redacted_thinking", "data": "RU5D"}
    assert tr.outcome.message["content"][0] == {"type": "redacted_thinking", "data": "RU5D"}


def test_refusal_delta_is_text_with_stop_reason_refusal():
    """A streamed refusal arrives as text and the stop reason says refusal."""
    tr, events = _run(openai_chunk({"role": "assistant", "content": None,
                                    "refusal": "I can't help with that."}),
                      openai_chunk({}, "stop"), DONE)
    assert tr.outcome.message["content"] == [{"type": "text", "text": "I can't help with that."}]
    assert events[-1][1]["delta"]["stop_reason"] == "refusal"


def test_unknown_part_with_no_text_is_an_error_not_an_empty_answer():
    """Content only in an unknown shape ends in an SSE error naming it, never end_turn."""
    tr, events = _run(openai_chunk({"content": [{"type": "hologram", "blob": "…"}]}),
                      openai_chunk({}, "stop"), DONE)
    names = [n for n, _ in events]
    assert names[-1] == "error"
    assert "message_delta" not in names
    assert "hologram" in events[-1][1]["error"]["message"]
    assert not tr.outcome.complete
    assert tr.outcome.unknown == {"hologram": 1}


def test_unknown_part_next_to_text_is_counted_and_the_text_arrives():
    """An extra unknown part does not cost the text; it is counted in the outcome."""
    tr, _ = _run(openai_chunk({"content": [{"type": "hologram", "blob": "…"},
                                           {"type": "text", "text": "still here"}]}),
                 openai_chunk({}, "stop"), DONE)
    assert tr.outcome.complete
    assert tr.outcome.message["content"] == [{"type": "text", "text": "still here"}]
    assert tr.outcome.unknown == {"hologram": 1}


def test_an_empty_stream_that_said_nothing_stays_an_empty_answer():
    """A backend that truly answered nothing is not an error here (the loop guard's job)."""
    tr, _ = _run(openai_chunk({"role": "assistant", "content": ""}), openai_chunk({}, "stop"),
                 DONE)
    assert tr.outcome.complete
    assert tr.outcome.message["content"] == []
