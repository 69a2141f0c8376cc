"""SSE encoding and the incremental parser."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from lynkr.providers import SSEParser, encode_sse


def _feed_split(data: bytes, cuts: list[int]) -> list[tuple[str, str, bytes]]:
    parser = SSEParser()
    events = []
    last = 0
    for cut in [*sorted(set(cuts)), len(data)]:
        events += parser.feed(data[last:cut])
        last = cut
    events += parser.close()
    return [(e.event, e.data, e.raw) for e in events]


def test_encode_sse_writes_event_data_and_blank_line():
    """A frame is `event:`, one compact JSON `data:` line and a blank line."""
    frame = encode_sse("ping", {"type": "ping", "text": "é"})
    assert frame == 'event: ping\ndata: {"type":"ping","text":"é"}\n\n'.encode()


def test_parser_reads_back_an_encoded_frame():
    """What encode_sse writes, the parser reads back unchanged."""
    (event,) = SSEParser().feed(encode_sse("message_start", {"a": [1, 2]}))
    assert event.event == "message_start"
    assert json.loads(event.data) == {"a": [1, 2]}


def test_parser_accepts_crlf_cr_and_lf_line_endings():
    """All three line terminators end lines and events."""
    data = b"data: one\r\n\r\ndata: two\r\rdata: three\n\n"
    assert [e.data for e in SSEParser().feed(data)] == ["one", "two", "three"]


def test_parser_joins_data_lines_and_skips_comments():
    """Several data lines join with newlines; comment lines are ignored."""
    data = b": keep-alive\nevent: x\ndata: a\ndata:b\n\n"
    (event,) = SSEParser().feed(data)
    assert (event.event, event.data) == ("x", "a\nb")


def test_parser_default_event_name_is_message():
    """An event without an `event:` line is called `message`."""
    (event,) = SSEParser().feed(b"data: [DONE]\n\n")
    assert (event.event, event.data) == ("message", "[DONE]")


def test_parser_keeps_the_raw_bytes_of_each_event():
    """Each event carries exactly the bytes it was parsed from."""
    data = b": c\nevent: a\ndata: 1\n\nevent: b\r\ndata: 2\r\n\r\n"
    events = SSEParser().feed(data)
    assert b"".join(e.raw for e in events) == data


def test_parser_reports_a_pending_event_at_a_cut():
    """Bytes of an unfinished event leave the parser pending."""
    parser = SSEParser()
    assert parser.feed(b'data: {"a":') == []
    assert parser.pending
    assert parser.pending_raw == b'data: {"a":'


def test_parser_handles_a_utf8_character_split_across_chunks():
    """A multi-byte character cut in two still decodes."""
    data = "data: héllo\n\n".encode()
    cut = data.index(b"\xc3") + 1
    assert [e[1] for e in _feed_split(data, [cut])] == ["héllo"]


def test_parser_waits_for_lf_after_a_trailing_cr():
    """A CR at the end of a chunk may be half of CRLF: no phantom blank line."""
    events = _feed_split(b"data: a\r\ndata: b\r\n\r\n", [8])
    assert [e[1] for e in events] == ["a\nb"]


_frames = st.lists(
    st.tuples(st.sampled_from(["", "event: x\n", "event: y\r\n"]),
              st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                            blacklist_characters="\r\n"), max_size=20),
              st.sampled_from([b"\n", b"\r\n", b"\r"]),
              st.booleans()),
    min_size=1, max_size=8,
)


@given(frames=_frames, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=20))
def test_parsing_is_independent_of_chunk_boundaries(frames, cuts):
    """Splitting the bytes anywhere yields the same events as one feed."""
    data = b"".join(
        (ev.encode() + (b": comment\n" if comment else b"") + b"data: " + text.encode()
         + eol + eol)
        for ev, text, eol, comment in frames
    )
    whole = _feed_split(data, [])
    assert _feed_split(data, [c % (len(data) + 1) for c in cuts]) == whole
    assert len(whole) == len(frames)


def test_encode_sse_escapes_a_lone_surrogate():
    """A lone surrogate cannot be UTF-8: the frame falls back to \\u escapes."""
    frame = encode_sse("x", {"t": "\ud800"})
    assert json.loads(SSEParser().feed(frame)[0].data) == {"t": "\ud800"}


_lf_frames = st.lists(
    st.tuples(st.sampled_from(["", "event: x\n"]),
              st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                                      blacklist_characters="\r\n"),
                               max_size=12), min_size=1, max_size=3),
              st.booleans(), st.sampled_from(["data: ", "data:", "data:  "])),
    min_size=1, max_size=8,
)


@given(frames=_lf_frames, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=20))
def test_lf_only_input_parses_like_crlf_input(frames, cuts):
    """The LF-only fast path gives the events the general (CR-aware) path gives."""
    lf = b"".join(
        (ev.encode() + (b": c\n" if comment else b"")
         + b"".join(prefix.encode() + line.encode() + b"\n" for line in lines) + b"\n")
        for ev, lines, comment, prefix in frames
    )
    crlf = lf.replace(b"\n", b"\r\n")
    split = [c % (len(lf) + 1) for c in cuts]
    lf_events = _feed_split(lf, split)
    assert [(e, d) for e, d, _ in lf_events] == [(e, d) for e, d, _ in _feed_split(crlf, [])]
    assert b"".join(raw for _, _, raw in lf_events) == lf


def test_parser_without_raw_gives_the_same_events_and_no_bytes():
    """`keep_raw=False` (a reader that keeps the stream itself) only drops `raw`."""
    data = b"event: a\ndata: one\n\n: note\ndata: two\ndata: three\n\n"
    parser = SSEParser(keep_raw=False)
    events = parser.feed(data[:13]) + parser.feed(data[13:])
    assert [(e.event, e.data, e.raw) for e in events] == [("a", "one", b""),
                                                        ("message", "two\nthree", b"")]
