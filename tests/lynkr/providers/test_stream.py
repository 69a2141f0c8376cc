"""Streaming OpenAI chat completions → Anthropic SSE."""

from __future__ import annotations

import itertools
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from lynkr.providers import MESSAGE_STOP_FRAME, OpenAIStreamTranslator, from_openai_response

from ._helpers import assert_well_formed, openai_chunk, sse_events

DONE = b"data: [DONE]\n\n"


def _run(*frames: bytes, end: bool = True) -> tuple[OpenAIStreamTranslator, list]:
    tr = OpenAIStreamTranslator(model="claude-sonnet-4-5")
    out = b"".join(tr.feed(f) for f in frames)
    if end:
        out += tr.end()
    return tr, sse_events(out)


def _tool(index, *, id=None, name=None, args=""):
    call = {"index": index, "function": {"arguments": args}}
    if id:
        call["id"] = id
        call["type"] = "function"
    if name:
        call["function"]["name"] = name
    return openai_chunk({"tool_calls": [call]})


def test_text_stream_becomes_anthropic_events():
    """Text deltas become one text block between message_start and message_delta."""
    tr, events = _run(openai_chunk({"role": "assistant", "content": ""}),
                      openai_chunk({"content": "Hel"}), openai_chunk({"content": "lo"}),
                      openai_chunk({}, "stop"), DONE)
    assert [n for n, _ in events] == [
        "message_start", "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_stop", "message_delta"]
    assert events[0][1]["message"]["model"] == "claude-sonnet-4-5"
    assert events[-1][1]["delta"]["stop_reason"] == "end_turn"
    assert tr.outcome.complete
    assert tr.outcome.message["content"] == [{"type": "text", "text": "Hello"}]


def test_message_stop_is_held_back_until_the_caller_sends_it():
    """The translator never emits message_stop itself; stop_frame holds it."""
    tr, events = _run(openai_chunk({"content": "x"}, "stop"), DONE)
    assert "message_stop" not in [n for n, _ in events]
    assert tr.stop_frame == MESSAGE_STOP_FRAME


def test_interleaved_tool_calls_keep_each_block_contiguous():
    """Alternating deltas of two tool calls become two well-formed blocks, args intact."""
    tr, events = _run(
        _tool(0, id="call_a", name="Bash"), _tool(1, id="call_b", name="Read"),
        _tool(0, args='{"comm'), _tool(1, args='{"file_path"'), _tool(0, args='and":"ls"}'),
        _tool(1, args=':"/x"}'), openai_chunk({}, "tool_calls"), DONE)
    assert_well_formed(events)
    starts = [p["content_block"] for n, p in events if n == "content_block_start"]
    assert [(b["id"], b["name"]) for b in starts] == [("call_a", "Bash"), ("call_b", "Read")]
    assert tr.outcome.message["content"][0]["input"] == {"command": "ls"}
    assert tr.outcome.message["content"][1]["input"] == {"file_path": "/x"}
    assert tr.outcome.message["stop_reason"] == "tool_use"


def test_no_input_json_delta_follows_its_block_stop():
    """Every input_json_delta of a block comes before that block's content_block_stop."""
    _, events = _run(_tool(0, id="a", name="A"), _tool(1, id="b", name="B"),
                     _tool(0, args="{}"), _tool(1, args="{}"),
                     openai_chunk({}, "tool_calls"), DONE)
    stopped = set()
    for name, payload in events:
        if name == "content_block_stop":
            stopped.add(payload["index"])
        if name == "content_block_delta":
            assert payload["index"] not in stopped


def test_reasoning_deltas_become_a_thinking_block_before_text():
    """reasoning_content streams as a thinking block, then text follows in its own block."""
    tr, events = _run(openai_chunk({"reasoning_content": "hmm"}), openai_chunk({"content": "ok"}),
                      openai_chunk({}, "stop"), DONE)
    starts = [p["content_block"]["type"] for n, p in events if n == "content_block_start"]
    assert starts == ["thinking", "text"]
    assert tr.outcome.message["content"][0] == {"type": "thinking", "thinking": "hmm",
                                               "signature": ""}


def test_usage_from_the_final_chunk_reaches_message_delta():
    """Usage sent after finish_reason (include_usage) is reported, cached tokens split."""
    usage = {"prompt_tokens": 100, "completion_tokens": 7,
             "prompt_tokens_details": {"cached_tokens": 60}}
    _tr, events = _run(openai_chunk({"content": "x"}), openai_chunk({}, "stop"),
                      openai_chunk(None, None, choices=[], usage=usage), DONE)
    assert events[-1][1]["usage"] == {"input_tokens": 40, "output_tokens": 7,
                                      "cache_read_input_tokens": 60}


def test_stream_cut_mid_tool_call_ends_in_an_api_error_event():
    """A stream cut inside a tool call ends with an api_error event, never a clean stop."""
    tr, events = _run(_tool(0, id="a", name="Bash"), _tool(0, args='{"comm'),
                      b'data: {"choi')
    assert events[-1][0] == "error"
    assert events[-1][1]["error"]["type"] == "api_error"
    assert "message_delta" not in [n for n, _ in events]
    assert not tr.outcome.complete
    assert tr.stop_frame == b""


def test_stream_without_finish_reason_is_a_failure():
    """[DONE] without a finish reason is an error, not end_turn."""
    tr, events = _run(openai_chunk({"content": "partial"}), DONE)
    assert events[-1][0] == "error"
    assert "finish reason" in tr.outcome.error_message


def test_malformed_chunk_fails_the_stream_at_once():
    """A data line that is not JSON yields an api_error event and nothing after it."""
    tr, events = _run(openai_chunk({"content": "a"}), b"data: {nope\n\n",
                      openai_chunk({"content": "b"}, "stop"), DONE)
    assert [n for n, _ in events][-1] == "error"
    assert sum(1 for n, _ in events if n == "error") == 1
    assert tr.outcome.error_type == "api_error"


def test_upstream_overload_error_chunk_becomes_overloaded_error():
    """An error object saying overloaded maps to overloaded_error (the CLI retries)."""
    _, events = _run(openai_chunk({"content": "a"}),
                     b'data: {"error":{"message":"busy","type":"server_overloaded"}}\n\n')
    assert events[-1][1]["error"]["type"] == "overloaded_error"


def test_invalid_tool_arguments_fail_instead_of_closing():
    """Tool arguments that are not JSON at the finish become an error event."""
    tr, events = _run(_tool(0, id="a", name="Bash"), _tool(0, args="{not json"),
                      openai_chunk({}, "tool_calls"), DONE)
    assert events[-1][0] == "error"
    assert not tr.outcome.complete


def test_text_after_an_open_tool_call_is_sent_after_it():
    """Text arriving while a tool block is open is buffered and sent as its own block."""
    tr, events = _run(_tool(0, id="a", name="A", args="{}"), openai_chunk({"content": "note"}),
                      openai_chunk({}, "tool_calls"), DONE)
    assert_well_formed(events)
    assert [b["type"] for b in tr.outcome.message["content"]] == ["tool_use", "text"]


def test_raw_upstream_bytes_are_kept_for_replay():
    """outcome.raw is exactly what upstream sent, and replaying it gives the same SSE."""
    frames = [openai_chunk({"content": "hi"}), openai_chunk({}, "stop"), DONE]
    tr = OpenAIStreamTranslator(model="m", message_id="msg_1")
    first = b"".join(tr.feed(f) for f in frames) + tr.end()
    assert tr.outcome.raw == b"".join(frames)
    again = OpenAIStreamTranslator(model="m", message_id="msg_1")
    assert again.feed(tr.outcome.raw) + again.end() == first


def test_end_after_finish_without_done_completes():
    """A backend that closes after the finish chunk without [DONE] still completes."""
    tr, _ = _run(openai_chunk({"content": "x"}, "stop"))
    assert tr.outcome.complete


# --- property: streaming equals non-streaming --------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=3),
    max_leaves=6,
)
_tool_calls = st.lists(
    st.tuples(st.sampled_from(["Bash", "Read", "Edit"]),
              st.dictionaries(st.text(max_size=5), _json_values, max_size=3)),
    max_size=3,
)


def _pieces(draw, text: str) -> list[str]:
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=5)))
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds) if text[a:b]]


@st.composite
def _responses(draw):
    reasoning = draw(st.text(max_size=20))
    text = draw(st.text(max_size=30))
    calls = draw(_tool_calls)
    args = [json.dumps(a) for _, a in calls]
    frames = [openai_chunk({"role": "assistant", "content": ""})]
    frames += [openai_chunk({"reasoning_content": p}) for p in _pieces(draw, reasoning)]
    frames += [openai_chunk({"content": p}) for p in _pieces(draw, text)]
    # each call opens in index order; the argument pieces of all calls interleave at random
    queues = {i: _pieces(draw, a) for i, a in enumerate(args)}
    opened: list[int] = []
    while len(opened) < len(calls) or any(queues[i] for i in opened):
        choices = [i for i in opened if queues[i]]
        if len(opened) < len(calls):
            choices.append(-1)
        pick = draw(st.sampled_from(choices))
        if pick == -1:
            i = len(opened)
            opened.append(i)
            frames.append(_tool(i, id=f"call_{i}", name=calls[i][0]))
        else:
            frames.append(_tool(pick, args=queues[pick].pop(0)))
    finish = "tool_calls" if calls else "stop"
    frames.append(openai_chunk({}, finish))
    message = {"role": "assistant", "content": text or None}
    if reasoning:
        message["reasoning_content"] = reasoning
    if calls:
        message["tool_calls"] = [
            {"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": a}}
            for i, ((n, _), a) in enumerate(zip(calls, args, strict=True))]
    completion = {"id": "chatcmpl-1", "choices": [{"index": 0, "message": message,
                                                   "finish_reason": finish}]}
    return frames, completion


@settings(max_examples=100, deadline=None)
@given(response=_responses(), cuts=st.lists(st.integers(0, 10_000), max_size=6))
def test_streaming_assembles_the_same_message_as_non_streaming(response, cuts):
    """Any split, interleaved stream gives a well-formed sequence equal to the plain answer."""
    frames, completion = response
    data = b"".join(frames) + DONE
    tr = OpenAIStreamTranslator(model="claude")
    out, last = b"", 0
    for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
        out += tr.feed(data[last:cut])
        last = cut
    out += tr.end()
    events = sse_events(out)
    assert_well_formed(events)
    expected = from_openai_response(completion, model="claude")
    assert tr.outcome.message == expected


def test_lone_surrogates_from_upstream_are_escaped_not_a_crash():
    """A JSON-escaped lone surrogate in a delta is sent as a valid escape."""
    tr, events = _run(b'data: {"choices":[{"index":0,"delta":{"content":"a\\ud800b"}}]}\n\n',
                      openai_chunk({}, "stop"), DONE)
    deltas = [p["delta"]["text"] for n, p in events if n == "content_block_delta"]
    assert deltas == ["a\ud800b"]
    assert tr.outcome.complete


def test_chunk_json_is_read_exactly_as_json_loads_reads_it():
    """Whitespace around a chunk is fine; trailing junk after the object is malformed."""
    translator, events = _run(b'data:  {"id":"c","choices":[{"delta":{"content":"a"}}]} \n\n',
                              openai_chunk({}, "stop"), b"data:  [DONE] \n\n")
    assert translator.outcome is not None
    assert translator.outcome.complete
    assert [e for e, _ in events][-1] == "message_delta"
    translator, events = _run(b'data: {"id":"c","choices":[]}x\n\n')
    assert events[-1] == ("error", {"type": "error", "error": {
        "type": "api_error", "message": "upstream sent a malformed stream chunk"}})
