"""`lynkr replay SESSION --verify`: prove each turn's client bytes from the recorded upstream.

For every turn that ended with `ModelResponded`, the recorded upstream answer (the raw
SSE bytes or JSON body; for an agent-loop turn every step's, from `LoopStepResponded`)
is translated again with the same adapter (`lynkr.system.make_adapter`), shaped the way
the orchestrator shaped it (`LoopFrames` for loop steps; the prompt cache's usage
rewrite of a stored JSON answer), and the SHA-256 of the result is compared with
`ModelResponded.client_digest`, the digest of the bytes the client was sent. A cache
hit is rebuilt from the stored answer its `CacheHit` names, which must have been
recorded by a `CacheStored`. Message ids Lynkr generates (an upstream answer without an
id) are random: a translation run twice tells them apart from upstream ids, and a
generated id is replaced by the recorded one. Events recorded before v3 of
`ModelResponded` have no digest: "not verifiable", not a failure.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eventstore import BlobRef, Recorder, thaw
from eventstore.events.session import (
    CacheHit,
    CacheStored,
    LoopStepResponded,
    ModelResponded,
    PolicyDecided,
    ToolCallInterrupted,
    ToolCallStarted,
    ToolCompleted,
    TurnStarted,
)
from lynkr import _json
from lynkr.orchestrator import LoopFrames, step_limit_text
from lynkr.providers import MESSAGE_STOP_FRAME, Adapter, encode_message_stream

__all__ = ["RecordedTurn", "TurnCheck", "recorded_turns", "request_body", "verify_turns"]

_TOOL_EVENTS = (PolicyDecided, ToolCallStarted, ToolCompleted, ToolCallInterrupted)
_ADDED_USAGE = ("input_tokens", "output_tokens", "cache_read_input_tokens",
                "cache_creation_input_tokens")  # what the loop sums over steps
_LIMIT_PREFIX = step_limit_text(0).split("=", 1)[0]
_MESSAGE_KEYS = ("id", "type", "role", "model", "content", "stop_reason", "stop_sequence",
                 "usage")  # the loop's visible message, in its key order


@dataclass(slots=True)
class RecordedTurn:
    """One turn's events: its `TurnStarted`, what followed with its number, its end."""

    started: TurnStarted
    events: list[Any] = field(default_factory=list)
    end: Any = None  # ModelResponded | UpstreamFailed | StreamAborted | None (open)


@dataclass(frozen=True, slots=True)
class TurnCheck:
    """The verdict on one turn: `status` is "ok", "differs" or "not verifiable"."""

    turn: int
    kind: str  # "stream", "json", "loop stream (3 steps)", "cache hit (json)", …
    status: str
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        """For `--json`."""
        return {"turn": self.turn, "kind": self.kind, "status": self.status,
                "detail": self.detail}


def recorded_turns(events: Sequence[Any]) -> list[RecordedTurn]:
    """A session stream's events grouped by turn, in turn order."""
    turns: dict[int, RecordedTurn] = {}
    for event in events:
        if isinstance(event, TurnStarted):
            turns[event.turn] = RecordedTurn(event)
            continue
        turn = turns.get(getattr(event, "turn", None) or -1)
        if turn is None:
            continue
        turn.events.append(event)
        if type(event).__name__ in ("ModelResponded", "UpstreamFailed", "StreamAborted"):
            turn.end = event
    return [turns[n] for n in sorted(turns)]


def request_body(recorder: Recorder, started: TurnStarted) -> dict[str, Any]:
    """The client's `/v1/messages` body, rebuilt from the turn's blobs (a string
    `system` comes back as one text block)."""
    body: dict[str, Any] = {"model": started.model}
    if started.system:
        body["system"] = [thaw(recorder.load_blob(ref)) for ref in started.system]
    body["messages"] = [thaw(recorder.load_blob(ref)) for ref in started.messages]
    if started.tools is not None:
        body["tools"] = thaw(recorder.load_blob(started.tools))
    body.update(thaw(dict(started.params or {})))
    if started.stream:
        body["stream"] = True
    return body


class _Verifier:
    """Re-derives the client bytes of each turn (see module docstring)."""

    def __init__(self, recorder: Recorder, adapter_for: Callable[[str], Adapter]) -> None:
        self.recorder = recorder
        self.adapter_for = adapter_for
        self.messages: dict[bytes, dict[str, Any]] = {}  # CacheStored digest → re-derived

    def check(self, turn: RecordedTurn) -> TurnCheck:
        end, number = turn.end, turn.started.turn
        stream = turn.started.stream
        if not isinstance(end, ModelResponded):
            return TurnCheck(number, "stream" if stream else "json", "not verifiable",
                             "no answer was sent" if end is None else type(end).__name__)
        if end.client_digest is None:
            return TurnCheck(number, "stream" if stream else "json", "not verifiable",
                             "recorded before client digests (ModelResponded v3)")
        if end.provider == "cache":
            return self._cache_hit(turn, end)
        adapter = self.adapter_for(end.provider or "")
        body = request_body(self.recorder, turn.started)
        steps = [e for e in turn.events if isinstance(e, LoopStepResponded)]
        candidates: list[tuple[str, bytes, dict[str, Any]]] = []
        if not steps:
            sent, message = self._plain(adapter, body, turn, end)
            candidates.append(("stream" if stream else "json", sent, message))
        loop = self._loop(adapter, body, turn, end, steps)
        count = max(len(steps), 1)
        candidates.append((f"loop {'stream' if stream else 'json'} ({count} step"
                           f"{'s' if count > 1 else ''})", *loop))
        for kind, sent, message in candidates:
            if hashlib.sha256(sent).hexdigest() == end.client_digest:
                self._remember(turn, message)
                return TurnCheck(number, kind, "ok", f"{len(sent)} bytes")
        return TurnCheck(number, candidates[0][0], "differs",
                         "the recorded upstream answer translates to bytes other than the "
                         "client was sent")

    def _remember(self, turn: RecordedTurn, message: dict[str, Any]) -> None:
        for event in turn.events:
            if isinstance(event, CacheStored):
                self.messages[event.message.digest] = message

    # -- one upstream answer -------------------------------------------------------------
    def _translated(self, adapter: Adapter, body: Mapping[str, Any], raw: bytes,
                    recorded_id: str | None, *, stop: bool) -> tuple[bytes, dict[str, Any]]:
        """The SSE bytes of one answer (with the held-back `message_stop` if `stop`)
        and its message."""
        first, message = _stream_once(adapter, body, raw, stop=stop)
        _, other = _stream_once(adapter, body, raw, stop=stop)
        return _same_id(first, message, other, recorded_id)

    def _parsed(self, adapter: Adapter, body: Mapping[str, Any], raw: bytes,
                recorded_id: str | None) -> dict[str, Any]:
        first = adapter.parse(raw, body)
        second = adapter.parse(raw, body)
        data, _ = _same_id(_json.dumps(first), first, second, recorded_id)
        parsed: dict[str, Any] = json.loads(data)
        return parsed

    def _plain(self, adapter: Adapter, body: Mapping[str, Any], turn: RecordedTurn,
               end: ModelResponded) -> tuple[bytes, dict[str, Any]]:
        raw = self._raw(end.upstream)
        recorded_id = self._id(end.message)
        if turn.started.stream:
            return self._translated(adapter, body, raw, recorded_id, stop=True)
        message = self._parsed(adapter, body, raw, recorded_id)
        if any(isinstance(e, CacheStored) for e in turn.events):
            message = _stored_json(message)
        return _json.dumps(message), message

    def _loop(self, adapter: Adapter, body: Mapping[str, Any], turn: RecordedTurn,
              end: ModelResponded, steps: list[LoopStepResponded]
              ) -> tuple[bytes, dict[str, Any]]:
        """The client's bytes of an agent-loop turn (`lynkr.orchestrator._loop`)."""
        pairs: list[tuple[BlobRef | None, BlobRef]] = (
            [(s.upstream, s.message) for s in steps] if steps else [(end.upstream, end.message)])
        final = thaw(self.recorder.load_blob(end.message))
        server = {e.tool for e in turn.events if isinstance(e, _TOOL_EVENTS)}
        frames, out, messages = LoopFrames(server), b"", []
        for i, (upstream, ref) in enumerate(pairs):
            raw = self._raw(upstream)
            if turn.started.stream:
                if i:
                    frames.next_step()
                sent, message = self._translated(adapter, body, raw, self._id(ref), stop=False)
                out += frames.feed(sent)
            else:
                message = self._parsed(adapter, body, raw, self._id(ref))
            messages.append(message)
        visible = _visible(messages, server, final)
        if turn.started.stream:
            content = visible["content"]
            if content and _is_limit(content[-1]):
                out += frames.text_block(content[-1]["text"])
            out += frames.final(visible["stop_reason"], visible["stop_sequence"],
                                visible["usage"]) + MESSAGE_STOP_FRAME
            return out, visible
        if len(messages) == 1 and any(isinstance(e, CacheStored) for e in turn.events):
            visible = _stored_json(visible)
        return _json.dumps(visible), visible

    def _raw(self, ref: BlobRef | None) -> bytes:
        data = self.recorder.load_blob(ref) if ref is not None else b""
        return data if isinstance(data, bytes) else b""

    def _id(self, ref: BlobRef) -> str | None:
        message = self.recorder.load_blob(ref)
        value = message.get("id") if isinstance(message, Mapping) else None
        return value if isinstance(value, str) else None

    # -- cache hits ----------------------------------------------------------------------
    def _cache_hit(self, turn: RecordedTurn, end: ModelResponded) -> TurnCheck:
        number, stream = turn.started.turn, turn.started.stream
        kind = f"cache hit ({'stream' if stream else 'json'})"
        hit = next((e for e in turn.events if isinstance(e, CacheHit)), None)
        if hit is None:
            return TurnCheck(number, kind, "differs", "answered by the cache without CacheHit")
        if not self._stored(hit):
            return TurnCheck(number, kind, "differs",
                             "the cached answer was never recorded by a CacheStored")
        served_id = self._id(end.message)
        for stored in (self.messages.get(hit.message.digest),
                       thaw(self.recorder.load_blob(hit.message))):
            if stored is None:
                continue
            usage = stored.get("usage") or {}
            message = {**stored, "id": served_id, "model": turn.started.model,
                       "usage": {"input_tokens": 0, "cache_creation_input_tokens": 0,
                                 "cache_read_input_tokens": hit.input_tokens,
                                 "output_tokens": usage.get("output_tokens", 0)}}
            sent = (b"".join(encode_message_stream(message))  # type: ignore[arg-type]
                    if stream else _json.dumps(message))
            if hashlib.sha256(sent).hexdigest() == end.client_digest:
                return TurnCheck(number, kind, "ok", f"{len(sent)} bytes")
        return TurnCheck(number, kind, "differs",
                         "the stored answer gives bytes other than the client was sent")

    def _stored(self, hit: CacheHit) -> bool:
        if hit.message.digest in self.messages:
            return True
        for record in _all_events(self.recorder):
            event = record.event
            if isinstance(event, CacheStored) and event.key == hit.key and (
                    event.message == hit.message):
                return True
        return False


def verify_turns(recorder: Recorder, events: Sequence[Any],
                 adapter_for: Callable[[str], Adapter]) -> list[TurnCheck]:
    """Check every turn of a session's `events` (see module docstring)."""
    verifier = _Verifier(recorder, adapter_for)
    return [verifier.check(turn) for turn in recorded_turns(events)]


def _all_events(recorder: Recorder) -> Iterator[Any]:
    position = 0
    while page := recorder.read_all(position, 1000):
        yield from page
        position = page[-1].position


def _stream_once(adapter: Adapter, body: Mapping[str, Any], raw: bytes,
                 *, stop: bool) -> tuple[bytes, dict[str, Any]]:
    relay = adapter.relay(body)
    out = relay.feed(raw)
    if not relay.done:
        out += relay.end()
    outcome = relay.outcome
    if stop and outcome is not None and outcome.complete:
        out += relay.stop_frame
    return out, dict(outcome.message or {}) if outcome is not None else {}


def _same_id(data: bytes, message: Mapping[str, Any], again: Mapping[str, Any],
             recorded_id: str | None) -> tuple[bytes, dict[str, Any]]:
    """`data` with a message id Lynkr generated (it differs between two translations)
    replaced by the recorded one, and tool ids derived from it with it."""
    made, other = message.get("id"), again.get("id")
    if not (isinstance(made, str) and made != other and recorded_id):
        return data, dict(message)
    old, new = made.removeprefix("msg_").encode(), recorded_id.removeprefix("msg_").encode()
    return data.replace(old, new), {**message, "id": recorded_id}


def _stored_json(message: Mapping[str, Any]) -> dict[str, Any]:
    """A stored non-streaming miss reports its uncached input as cache creation
    (`lynkr.orchestrator._cache.PromptCache.store` with `rewrite_usage`)."""
    usage = message.get("usage") or {}
    created = int(usage.get("input_tokens", 0)) + int(usage.get("cache_creation_input_tokens", 0))
    return {**message, "usage": {**usage, "input_tokens": 0,
                                 "cache_creation_input_tokens": created}}


def _is_limit(block: Any) -> bool:
    return (isinstance(block, Mapping) and block.get("type") == "text"
            and str(block.get("text", "")).startswith(_LIMIT_PREFIX))


def _visible(messages: list[dict[str, Any]], server: set[str],
             final: Mapping[str, Any]) -> dict[str, Any]:
    """The loop's one message from its steps: their blocks but server tool calls, usage
    summed, the recorded stop reason (it says how the loop ended) and limit notice."""
    content: list[Any] = []
    usage: dict[str, int] = {}
    for message in messages:
        content += [b for b in message.get("content") or ()
                    if not (b.get("type") == "tool_use" and b.get("name") in server)]
        for key, value in (message.get("usage") or {}).items():
            if key in _ADDED_USAGE and isinstance(value, int):
                usage[key] = usage.get(key, 0) + value
    recorded = list(final.get("content") or ())
    if recorded and _is_limit(recorded[-1]):
        content.append(recorded[-1])
    first = messages[0] if messages else {}
    values = {"id": first.get("id"), "type": "message", "role": "assistant",
              "model": first.get("model"), "content": content,
              "stop_reason": final.get("stop_reason"),
              "stop_sequence": final.get("stop_sequence"), "usage": usage}
    return {key: values[key] for key in _MESSAGE_KEYS}
