"""What both stream readers share: the SSE parser, every raw byte, the outcome, the ending.

`StreamReader` is the loop-free base of `OpenAIStreamTranslator` (`_stream`, which
translates) and `AnthropicStreamAssembler` (`_stream_anthropic`, which passes events
through): `feed` takes upstream bytes and returns what the client gets now, `end`
finishes or fails the stream when the upstream body ends; a subclass handles one
event (`_on_event`) and the ending (`_on_end`). `error_frame` and `MESSAGE_STOP_FRAME`
are the two frames Lynkr itself writes into a stream.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping

from lynkr.providers._sse import SSEEvent, SSEParser, encode_sse
from lynkr.providers._wire import StreamOutcome

__all__ = ["MESSAGE_STOP_FRAME", "StreamReader", "error_frame", "error_type_for"]

MESSAGE_STOP_FRAME = encode_sse("message_stop", {"type": "message_stop"})
_OVERLOAD_WORDS = ("overload", "rate_limit", "rate limit", "429", "503", "529", "unavailable")


def error_frame(error_type: str, message: str) -> bytes:
    """An SSE `error` event in Anthropic's shape."""
    return encode_sse("error", {"type": "error", "error": {"type": error_type, "message": message}})


def error_type_for(error: object) -> str:
    """`overloaded_error` for an upstream error that says overload or rate limit, else
    `api_error`."""
    if isinstance(error, Mapping):
        text = " ".join(str(error.get(k, "")) for k in ("type", "code", "message")).lower()
    else:
        text = str(error).lower()
    return "overloaded_error" if any(w in text for w in _OVERLOAD_WORDS) else "api_error"


class StreamReader(abc.ABC):
    """Read one upstream SSE stream: a subclass says what each event and the end mean."""

    def __init__(self, *, keep_raw: bool = True) -> None:
        self._parser = SSEParser(keep_raw=keep_raw)
        self._raw = bytearray()
        self._outcome: StreamOutcome | None = None
        self.stop_frame = b""

    @property
    def done(self) -> bool:
        """True once the stream completed or failed; later input is only recorded."""
        return self._outcome is not None

    @property
    def raw(self) -> bytes:
        """Every upstream byte fed so far."""
        return bytes(self._raw)

    @property
    def outcome(self) -> StreamOutcome | None:
        """How the stream ended (None while it runs)."""
        return self._outcome

    def feed(self, data: bytes) -> bytes:
        """Consume upstream bytes; return the SSE bytes to send to the client now."""
        self._raw += data
        if self._outcome is not None:
            return b""
        out: list[bytes] = []
        for event in self._parser.feed(data):
            self._on_event(event, out)
            if self._outcome is not None:
                break
        return b"".join(out)

    def end(self) -> bytes:
        """The upstream body ended: finish the stream, or fail it if it was incomplete."""
        if self._outcome is not None:
            return b""
        out: list[bytes] = []
        for event in self._parser.close():
            self._on_event(event, out)
            if self._outcome is not None:
                return b"".join(out)
        self._on_end(out)
        return b"".join(out)

    @abc.abstractmethod
    def _on_event(self, event: SSEEvent, out: list[bytes]) -> None:
        """Handle one upstream event, appending what goes to the client to `out`."""

    @abc.abstractmethod
    def _on_end(self, out: list[bytes]) -> None:
        """The body ended without an outcome: complete the stream or fail it."""

    @abc.abstractmethod
    def _fail(self, out: list[bytes], error_type: str, message: str) -> None:
        """End the stream as failed (an SSE `error` event unless one went out already)."""

    def _fail_unfinished(self, out: list[bytes], why: str) -> None:
        """Fail a stream that ended early: `why` unless it was cut in the middle of an event."""
        why = "was cut mid-event" if self._parser.pending else why
        self._fail(out, "api_error", f"upstream stream {why}")
