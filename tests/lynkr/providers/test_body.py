"""`BodyDecoder` and `framing_of`: response bodies off the wire, however the bytes arrive."""

from __future__ import annotations

import itertools

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lynkr.providers._body import BodyDecoder, Framing, framing_of

payloads = st.lists(st.binary(min_size=1, max_size=300), max_size=12)


def _chunked(parts: list[bytes], *, extensions: bool = False, trailers: bool = False) -> bytes:
    """`parts` as a chunked body, optionally with chunk extensions and trailer fields."""
    ext = b";name=value" if extensions else b""
    body = b"".join(b"%x%s\r\n%s\r\n" % (len(p), ext, p) for p in parts)
    return body + b"0" + ext + b"\r\n" + (b"x-trailer: 1\r\n" if trailers else b"") + b"\r\n"


def _segments(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def _decode(decoder: BodyDecoder, pieces: list[bytes]) -> bytes:
    return b"".join(decoder.feed(piece) for piece in pieces)


@given(payloads, st.lists(st.integers(0, 10_000), max_size=20), st.booleans(), st.booleans())
def test_a_chunked_body_decodes_whatever_the_segmentation(parts, cuts, ext, trailers):
    """Any split of the wire bytes gives the same payload, the end, and no extra bytes."""
    decoder = BodyDecoder(Framing.CHUNKED)
    wire = _chunked(parts, extensions=ext, trailers=trailers)
    assert _decode(decoder, _segments(wire, cuts)) == b"".join(parts)
    assert decoder.done
    assert not decoder.extra


@given(payloads, st.binary(min_size=1, max_size=20), st.lists(st.integers(0, 10_000),
                                                              max_size=10))
def test_bytes_after_a_chunked_body_are_extra(parts, tail, cuts):
    """Bytes after the last chunk's empty line: done, and `extra` says the socket is dirty."""
    decoder = BodyDecoder(Framing.CHUNKED)
    assert _decode(decoder, _segments(_chunked(parts) + tail, cuts)) == b"".join(parts)
    assert decoder.done
    assert decoder.extra


@given(st.binary(max_size=2000), st.binary(max_size=10),
       st.lists(st.integers(0, 10_000), max_size=10))
def test_a_length_body_stops_at_its_length(body, tail, cuts):
    """`Content-Length` bytes exactly; what follows is extra."""
    decoder = BodyDecoder(*((Framing.LENGTH, len(body)) if body else (Framing.NONE, 0)))
    assert _decode(decoder, _segments(body + tail, cuts)) == body
    assert decoder.done
    assert decoder.extra == bool(tail)


def test_one_read_with_many_chunks_is_one_piece():
    """Every chunk a read delivered comes back joined."""
    decoder = BodyDecoder(Framing.CHUNKED)
    assert decoder.feed(_chunked([b"data: 1\n\n", b"data: 2\n\n"])[:-5]) == (
        b"data: 1\n\ndata: 2\n\n")
    assert not decoder.done


@pytest.mark.parametrize("wire", [
    b"zz\r\nab\r\n0\r\n\r\n",  # not hex
    b"2\r\nabXY0\r\n\r\n",  # no CRLF after the data
    b"-1\r\n",  # a sign
    b"12345678901234567\r\n",  # more than 16 hex digits
    b" 2\r\nab\r\n",  # leading space
])
def test_a_malformed_chunked_body_is_a_protocol_error(wire):
    """Bad sizes and missing CRLFs are `RemoteProtocolError`s."""
    with pytest.raises(httpx.RemoteProtocolError):
        BodyDecoder(Framing.CHUNKED).feed(wire)


def test_overlong_lines_and_trailers_are_refused():
    """A size line over 4 KiB, or over 64 KiB of trailers, is a protocol error."""
    with pytest.raises(httpx.RemoteProtocolError, match="too long"):
        BodyDecoder(Framing.CHUNKED).feed(b"1;" + b"x" * 5000)
    decoder = BodyDecoder(Framing.CHUNKED)
    decoder.feed(b"0\r\n")
    with pytest.raises(httpx.RemoteProtocolError, match="trailers"):
        decoder.feed((b"x-t: " + b"v" * 2000 + b"\r\n") * 40)


def test_end_of_input_ends_only_a_close_delimited_body():
    """EOF is the end of a body read until close, and an error for the others."""
    decoder = BodyDecoder(Framing.CLOSE)
    assert decoder.feed(b"anything") == b"anything"
    decoder.end_of_input()
    assert decoder.done
    for framing, length in ((Framing.LENGTH, 5), (Framing.CHUNKED, 0)):
        cut = BodyDecoder(framing, length)
        cut.feed(b"ab")
        with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
            cut.end_of_input()


@pytest.mark.parametrize(("method", "status", "headers", "expected"), [
    ("GET", 200, [(b"content-length", b"5")], (Framing.LENGTH, 5)),
    ("GET", 200, [(b"content-length", b"0")], (Framing.NONE, 0)),
    ("POST", 200, [(b"transfer-encoding", b"chunked"), (b"content-length", b"5")],
     (Framing.CHUNKED, 0)),
    ("GET", 200, [(b"transfer-encoding", b"gzip, Chunked")], (Framing.CHUNKED, 0)),
    ("GET", 200, [(b"transfer-encoding", b"gzip")], (Framing.CLOSE, 0)),
    ("GET", 200, [], (Framing.CLOSE, 0)),
    ("HEAD", 200, [(b"content-length", b"5")], (Framing.NONE, 0)),
    ("GET", 204, [], (Framing.NONE, 0)),
    ("GET", 304, [(b"content-length", b"5")], (Framing.NONE, 0)),
])
def test_framing_follows_rfc_9112(method, status, headers, expected):
    """HEAD, 204 and 304 have no body; chunked wins over a length; else until close."""
    assert framing_of(method, status, headers) == expected
