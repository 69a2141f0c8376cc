"""Streaming OpenAI chat completions → Anthropic SSE, as a loop-free state machine.

`OpenAIStreamTranslator` is fed the upstream bytes as they arrive (`feed`) and returns
the Anthropic SSE bytes to send now; `end()` is called when the upstream body ends. It
never does I/O. The event order it produces is `message_start`, then for each content
block `content_block_start`, its deltas, `content_block_stop`, then `message_delta`
(stop reason and usage) — and `message_stop`, which is *held back* in `stop_frame`: the
caller sends it only after the turn is committed to the event log (acknowledged means
durable).

Content blocks (one open at a time, as Anthropic streams them):
- Text and reasoning stream live, in whichever shape the delta carries them
  (`lynkr.providers._parts`: a string, a list of typed parts such as Databricks'
  `reasoning` summaries or Mistral's `thinking`, or the `reasoning_content` /
  `reasoning` fields). A signature the backend sends for its reasoning goes out as a
  `signature_delta` of the thinking block (unsigned reasoning keeps an empty
  signature); encrypted reasoning is a whole `redacted_thinking` block; a refusal is
  text and makes the stop reason `refusal`. A text or thinking block closes when
  something else starts — its content needs no completion.
- The first tool call streams live and stays open until the upstream stream finishes:
  with interleaved parallel calls (deltas of call 0 and call 1 alternating) a call's
  arguments are only known to be complete at the end. Deltas for any other block that
  arrive while a tool block is open are buffered, and each buffered block is sent whole
  (start, one delta, stop) after the open block closes. So every `input_json_delta` lies
  strictly between its block's start and stop, and no block is closed early.
- At the finish, every tool call's arguments must parse as a JSON object; if one does
  not, the stream fails instead of closing.

Failures become one SSE `error` event and nothing after it: a malformed chunk, an
upstream `error` object, a stream that ends (or is cut mid-event) without a finish
reason, unparseable tool arguments, or a stream whose content came only in shapes Lynkr
cannot translate (`unknown` names them) — never an empty `end_turn`. The error type is
`api_error`, which makes Claude Code resend the turn without streaming; an upstream
error that says it is overloaded or rate limited maps to `overloaded_error`, which makes
it retry the stream. The translator also assembles the final Anthropic message
(`outcome.message`) and keeps every upstream byte (`outcome.raw`) for replay. """

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from json.scanner import make_scanner
from typing import Any

from lynkr.errors import UpstreamError
from lynkr.providers._from_openai import (
    build_response,
    message_id_for,
    tool_id_for,
    untranslatable,
)
from lynkr.providers._parts import UnknownParts, message_pieces
from lynkr.providers._sse import SSEEvent, encode_sse
from lynkr.providers._stream_blocks import StreamBlock
from lynkr.providers._stream_reader import MESSAGE_STOP_FRAME, StreamReader, error_type_for
from lynkr.providers._translate import stop_reason_for, usage_from_openai
from lynkr.providers._wire import StreamOutcome, Usage

__all__ = ["OpenAIStreamTranslator"]

# What json.loads runs, minus two layers. (typeshed types the argument as the scanner
# class itself; at run time it is the decoder whose settings the scanner copies.)
_scan_json: Callable[[str, int], tuple[Any, int]] = make_scanner(
    json.JSONDecoder())  # type: ignore[arg-type]


def _load_object(data: str) -> Any:
    """`json.loads(data)`, with a cheaper path for a chunk that is one JSON object.

    Raises:
        ValueError: `data` is not JSON.
    """
    if data[:1] == "{":
        try:
            value, end = _scan_json(data, 0)
        except StopIteration:
            value, end = None, -1
        if end == len(data):
            return value
    return json.loads(data)


class OpenAIStreamTranslator(StreamReader):
    """Translate one upstream chat-completions stream into Anthropic SSE bytes."""

    def __init__(
        self,
        *,
        model: str,
        message_id: str | None = None,
        input_tokens: int = 0,
        stop_sequences: tuple[str, ...] | list[str] = (),
    ) -> None:
        """Args:
        model: the model name the client asked for (echoed in `message_start`).
        message_id: the id to use (default: derived from the first chunk's id).
        input_tokens: an input estimate for `message_start` (the final usage wins).
        stop_sequences: the request's stop sequences (to report `stop_sequence`).
        """
        self._model = model
        self._msg_id = message_id
        self._input_tokens = input_tokens
        self._stop_sequences = tuple(stop_sequences)
        super().__init__(keep_raw=False)  # every byte is kept whole in `_raw` already
        self._started = False
        self._blocks: list[StreamBlock] = []  # started blocks, in Anthropic index order
        self._pending: list[StreamBlock] = []  # buffered behind an open tool block
        self._tools: dict[int, StreamBlock] = {}
        self._seq_pending: dict[str, StreamBlock] = {}
        self._current: StreamBlock | None = None
        self._finish: str | None = None
        self._matched_stop: object = None
        self._usage = Usage()
        self._events = 0
        self._refused = False
        self.unknown = UnknownParts()  # parts and fields that could not be translated

    def _on_end(self, out: list[bytes]) -> None:
        if self._finish is None:
            self._fail_unfinished(out, "ended without a finish reason")
        else:
            self._complete(out)

    # --- chunk handling -----------------------------------------------------------------

    def _emit(self, out: list[bytes], event: str, payload: Mapping[str, Any]) -> None:
        self._events += 1
        out.append(encode_sse(event, payload))

    def _emit_delta(self, out: list[bytes], block: StreamBlock, text: str) -> None:
        self._events += 1
        out.append(block.delta_frame(text))

    def _on_event(self, event: SSEEvent, out: list[bytes]) -> None:
        data = event.data
        try:
            chunk = _load_object(data)
        except ValueError:
            if data.strip() == "[DONE]":
                out.append(self.end())
                return
            self._fail(out, "api_error", "upstream sent a malformed stream chunk")
            return
        if not isinstance(chunk, dict):
            self._fail(out, "api_error", "upstream sent a stream chunk that is not an object")
            return
        if chunk.get("error"):
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else str(error)
            self._fail(out, error_type_for(error), f"upstream error: {message}")
            return
        self._on_chunk(chunk, out)

    def _on_chunk(self, chunk: dict[str, Any], out: list[bytes]) -> None:
        if not self._started:
            self._start(chunk, out)
        if isinstance(chunk.get("usage"), dict):
            self._usage = usage_from_openai(chunk["usage"])
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return
        choice = choices[0]
        delta = choice.get("delta")
        if isinstance(delta, dict):
            self._on_delta(delta, out)
        if choice.get("finish_reason"):
            self._finish = str(choice["finish_reason"])
            self._matched_stop = choice.get("stop_reason")

    def _start(self, chunk: Mapping[str, Any], out: list[bytes]) -> None:
        self._started = True
        self._msg_id = self._msg_id or message_id_for(chunk.get("id"))
        usage = {"input_tokens": self._input_tokens, "output_tokens": 0}
        self._emit(out, "message_start", {"type": "message_start", "message": {
            "id": self._msg_id, "type": "message", "role": "assistant", "model": self._model,
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage,
        }})

    def _on_delta(self, delta: Mapping[str, Any], out: list[bytes]) -> None:
        content = delta.get("content")
        if isinstance(content, str) and len(delta) <= 2 and (len(delta) == 1 or "role" in delta):
            if content:  # the common delta, plain text: no pieces to build
                self._sequential("text", content, out)
            return
        for piece in message_pieces(delta, self.unknown):
            kind = piece.kind
            if kind == "signature":
                self._sign(piece.text, out)
            elif kind == "redacted_thinking":
                self._whole(StreamBlock(kind, [piece.text]), out)
            else:
                self._refused = self._refused or kind == "refusal"
                self._sequential("thinking" if kind == "thinking" else "text", piece.text, out)
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            for position, call in enumerate(calls):
                if isinstance(call, dict):
                    self._tool_delta(call, position, out)

    def _sequential(self, kind: str, text: str, out: list[bytes]) -> None:
        current = self._current
        if current is not None and current.kind == kind and not current.signature:
            current.parts.append(text)
            self._emit_delta(out, current, text)
        elif current is not None and current.kind == "tool_use":
            block = self._seq_pending.get(kind)
            if block is None or block.signature:
                block = self._seq_pending[kind] = StreamBlock(kind)
                self._pending.append(block)
            block.parts.append(text)
        else:
            block = StreamBlock(kind, [text])
            self._open(block, out)
            self._emit_delta(out, block, text)

    def _sign(self, signature: str, out: list[bytes]) -> None:
        """The signature of the reasoning just streamed (it ends that thinking block)."""
        current = self._current
        if current is not None and current.kind == "thinking" and not current.signature:
            current.signature = signature
            self._events += 1
            out.append(current.signature_frame())
            return
        if current is not None and current.kind == "tool_use":
            block = self._seq_pending.get("thinking")
            if block is None or block.signature:
                block = self._seq_pending["thinking"] = StreamBlock("thinking")
                self._pending.append(block)
            block.signature = signature
            return
        block = StreamBlock("thinking", signature=signature)  # a signature with no text before it
        self._open(block, out)
        self._events += 1
        out.append(block.signature_frame())

    def _whole(self, block: StreamBlock, out: list[bytes]) -> None:
        """A block that arrives complete (redacted thinking): started and left open."""
        if self._current is not None and self._current.kind == "tool_use":
            self._pending.append(block)
        else:
            self._open(block, out)

    def _tool_delta(self, call: Mapping[str, Any], position: int, out: list[bytes]) -> None:
        index = call.get("index", position)
        index = index if isinstance(index, int) else position
        raw_function = call.get("function")
        function: dict[str, Any] = raw_function if isinstance(raw_function, dict) else {}
        arguments = function.get("arguments")
        piece = arguments if isinstance(arguments, str) else (
            json.dumps(arguments) if isinstance(arguments, dict) else "")
        block = self._tools.get(index)
        if block is None:
            block = self._tools[index] = StreamBlock("tool_use")
            block.tool_id = str(call.get("id") or tool_id_for(self._msg_id or "", index))
            block.name = str(function.get("name") or "")
            block.parts.append(piece)
            if block.name and (self._current is None or self._current.kind != "tool_use"):
                self._open(block, out)
                if piece:
                    self._emit_delta(out, block, piece)
            else:
                self._pending.append(block)
            return
        if not block.name and function.get("name"):
            block.name = str(function["name"])
        block.parts.append(piece)
        if block is self._current and piece:
            self._emit_delta(out, block, piece)

    def _open(self, block: StreamBlock, out: list[bytes]) -> None:
        self._close_current(out)
        block.index = len(self._blocks)
        self._blocks.append(block)
        self._current = block
        self._emit(out, "content_block_start", block.start_payload())

    def _close_current(self, out: list[bytes]) -> None:
        if self._current is not None:
            self._emit(out, "content_block_stop",
                       {"type": "content_block_stop", "index": self._current.index})
            self._current = None

    # --- endings ------------------------------------------------------------------------

    def _complete(self, out: list[bytes]) -> None:
        if not self._started:
            self._start({}, out)
        try:
            for block in (*self._blocks, *self._pending):
                block.final()  # every tool call's arguments must parse before we close
        except UpstreamError as exc:
            self._fail(out, "api_error", exc.message)
            return
        if not self._blocks and not self._pending and self.unknown:
            self._fail(out, "api_error", untranslatable(self.unknown).message, untranslated=True)
            return
        self._close_current(out)
        for block in self._pending:
            text = "".join(block.parts)
            self._open(block, out)
            if text and block.kind != "redacted_thinking":
                self._emit_delta(out, block, text)
            if block.signature:
                self._events += 1
                out.append(block.signature_frame())
        self._close_current(out)
        finals = [b.final() for b in self._blocks]
        has_tools = any(b.kind == "tool_use" for b in self._blocks)
        finish = self._finish or "stop"
        if self._refused and finish not in ("tool_calls", "length"):
            finish = "content_filter"
        stop_reason = stop_reason_for(finish, has_tool_calls=has_tools,
                                      matched_stop=self._matched_stop,
                                      stop_sequences=self._stop_sequences)
        matched = self._matched_stop if stop_reason == "stop_sequence" else None
        self._emit(out, "message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": matched},
            "usage": self._usage.to_json(),
        })
        message = build_response(self._msg_id or "", self._model, finals, stop_reason,
                                 matched if isinstance(matched, str) else None, self._usage)
        self.stop_frame = MESSAGE_STOP_FRAME
        self._outcome = StreamOutcome(complete=True, message=message, raw=bytes(self._raw),
                                      events=self._events + 1, usage=self._usage,
                                      unknown=dict(self.unknown.counts))

    def _fail(self, out: list[bytes], error_type: str, message: str, *,
              untranslated: bool = False) -> None:
        self._emit(out, "error", {"type": "error",
                                  "error": {"type": error_type, "message": message}})
        self._outcome = StreamOutcome(complete=False, error_type=error_type,
                                      error_message=message, raw=bytes(self._raw),
                                      events=self._events, usage=self._usage,
                                      unknown=dict(self.unknown.counts),
                                      untranslatable=untranslated)
