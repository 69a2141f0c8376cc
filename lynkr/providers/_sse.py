"""Server-sent events: encoding, and an incremental parser that accepts bytes split anywhere.

The parser follows the WHATWG event-stream rules: lines end in CRLF, LF or CR; `data:`
lines are joined with newlines; `event:` names the event (default `message`); lines that
start with `:` are comments; a blank line dispatches an event if it had data. Each parsed
event keeps the exact bytes it was made of (`raw`, including comments before it), so a
pass-through proxy can forward an upstream stream byte for byte while still reading it.
Decoding happens per complete line, so a UTF-8 character split across chunks is fine.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["SSEEvent", "SSEParser", "encode_sse"]

_EOL = re.compile(rb"\r\n|\r|\n")


def encode_sse(event: str, data: Mapping[str, Any]) -> bytes:
    """One SSE frame: `event: <name>`, a single compact-JSON `data:` line, a blank line."""
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    try:
        return f"event: {event}\ndata: {payload}\n\n".encode()
    except UnicodeEncodeError:  # a lone surrogate: \u-escape everything, still valid JSON
        payload = json.dumps(data, separators=(",", ":"))
        return f"event: {event}\ndata: {payload}\n\n".encode()


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: its name, its joined data and the bytes it came from."""

    event: str
    data: str
    raw: bytes


class SSEParser:
    """Feed bytes as they arrive; get complete events back.

    `feed` returns the events completed by the new bytes. `pending` tells whether the
    stream so far ends inside an event (bytes or fields not yet dispatched), which at
    end of input means the stream was cut.
    """

    __slots__ = ("_buf", "_data", "_event", "_keep_raw", "_raw")

    def __init__(self, *, keep_raw: bool = True) -> None:
        """Args:
        keep_raw: give each event the bytes it came from (`SSEEvent.raw`, and
            `pending_raw`); a reader that keeps the whole stream itself passes False
            and gets `raw == b""`.
        """
        self._buf = b""
        self._raw = bytearray()
        self._data: list[str] = []
        self._event = ""
        self._keep_raw = keep_raw

    @property
    def pending(self) -> bool:
        """True while an event has started but not been dispatched."""
        return bool(self._buf.strip()) or bool(self._data) or bool(self._event)

    @property
    def pending_raw(self) -> bytes:
        """Bytes received that belong to no dispatched event yet."""
        return bytes(self._raw) + self._buf

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Parse `chunk` (any size, split anywhere) and return the events it completes."""
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" not in buf:
            return self._feed_lf(buf)
        events: list[SSEEvent] = []
        pos = mark = 0  # mark: where the bytes of the event being parsed begin in buf
        size = len(buf)
        has_cr = b"\r" in buf
        while True:
            if has_cr:  # the general case; LF-only streams take the cheaper find()
                match = _EOL.search(buf, pos)
                if match is None:
                    break
                line_end, end = match.start(), match.end()
                if end == size and buf[end - 1:end] == b"\r":
                    break  # a CR at the very end may be the first half of CRLF
            else:
                line_end = buf.find(b"\n", pos)
                if line_end < 0:
                    break
                end = line_end + 1
            line = buf[pos:line_end]
            pos = end
            if line:
                self._field(line)
            elif self._data:
                raw = (bytes(self._raw) + buf[mark:end] if self._raw else buf[mark:end]
                       ) if self._keep_raw else b""
                events.append(SSEEvent(self._event or "message", "\n".join(self._data), raw))
                self._reset()
                mark = end
            else:
                self._event = ""
        if self._keep_raw:
            self._raw += buf[mark:pos]
        self._buf = buf[pos:]
        return events

    def _feed_lf(self, buf: bytes) -> list[SSEEvent]:
        """`feed` for input without CR (the usual case): one split instead of a scan."""
        lines = buf.split(b"\n")
        self._buf = lines.pop()  # the bytes after the last LF: an unfinished line
        events: list[SSEEvent] = []
        keep_raw = self._keep_raw
        data = self._data
        pos = mark = 0
        for line in lines:
            pos += len(line) + 1
            if line:
                if line[:6] == b"data: ":
                    data.append(line[6:].decode("utf-8", errors="replace"))
                else:
                    self._field(line)
            elif data:
                raw = b""
                if keep_raw:
                    raw = bytes(self._raw) + buf[mark:pos] if self._raw else buf[mark:pos]
                    self._raw.clear()
                text = data[0] if len(data) == 1 else "\n".join(data)
                events.append(SSEEvent(self._event or "message", text, raw))
                data.clear()
                self._event = ""
                mark = pos
            else:
                self._event = ""
        if keep_raw:
            self._raw += buf[mark:pos]
        return events

    def close(self) -> list[SSEEvent]:
        """End of input: a CR held back as a possible half of CRLF ends its line after all."""
        if self._buf.endswith(b"\r"):
            return self.feed(b"\n")
        return []

    def _reset(self) -> None:
        self._raw.clear()
        self._data.clear()
        self._event = ""

    def _field(self, line: bytes) -> None:
        if line[:1] == b":":
            return
        name, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        text = value.decode("utf-8", errors="replace")
        if name == b"data":
            self._data.append(text)
        elif name == b"event":
            self._event = text
