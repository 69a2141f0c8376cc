"""Adapter for Anthropic-format backends: the native API (or any compatible server) and Azure.

No translation is needed: the body passes through with the backend's model name,
the max_tokens cap, the auth header, `anthropic-version` and the filtered
`anthropic-beta`. Thinking blocks without a signature are dropped (an Anthropic
upstream rejects them). Streams are relayed frame by frame without re-encoding
(`AnthropicStreamAssembler`), except `message_start`, re-encoded to carry the model
name the client asked for; the assembler builds the final message so the turn can be
recorded, and holds back `message_stop` until the caller has committed it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from lynkr import _json
from lynkr.errors import LynkrError, StreamBrokenError
from lynkr.providers._parts import UnknownParts
from lynkr.providers._settings import BackendSettings
from lynkr.providers._sse import encode_sse
from lynkr.providers._stream_anthropic import AnthropicStreamAssembler
from lynkr.providers._translate import filter_betas, strip_unsigned_thinking
from lynkr.providers._upstream import UpstreamRequest, map_status
from lynkr.providers._wire import StreamOutcome

__all__ = ["AnthropicAdapter", "AnthropicRelay"]



class AnthropicRelay:
    """The pass-through assembler, with `message_start` carrying the requested model name."""

    def __init__(self, requested_model: str) -> None:
        self._assembler = AnthropicStreamAssembler()
        self._model = requested_model
        self._renamed = False
        self.unknown = UnknownParts()  # Anthropic blocks pass through: nothing is dropped

    @property
    def done(self) -> bool:
        """True once the stream completed or failed."""
        return self._assembler.done

    @property
    def outcome(self) -> StreamOutcome | None:
        """How the stream ended (None while it runs)."""
        return self._assembler.outcome

    @property
    def raw(self) -> bytes:
        """Every upstream byte fed so far."""
        return self._assembler.raw

    @property
    def stop_frame(self) -> bytes:
        """The held-back `message_stop` frame (empty until the stream completed)."""
        return self._assembler.stop_frame

    def feed(self, data: bytes) -> bytes:
        """Upstream bytes to forward now (the first event re-encoded with the model name)."""
        out = self._assembler.feed(data)
        if not self._renamed and out.startswith(b"event: message_start"):
            self._renamed = True
            head, _, rest = out.partition(b"\n\n")
            _, _, data_line = head.partition(b"\ndata: ")
            try:
                start = json.loads(data_line)
                start["message"]["model"] = self._model
            except (ValueError, KeyError, TypeError):
                return out  # the assembler has judged it; forward as received
            return encode_sse("message_start", start) + rest
        return out

    def end(self) -> bytes:
        """The upstream body ended: the error frame if it was incomplete."""
        return self._assembler.end()


class AnthropicAdapter:
    """The adapter for `anthropic` and `azure-anthropic` backends."""

    def __init__(self, backend: BackendSettings, *, max_tokens_cap: int | None = None,
                 drop_betas: tuple[str, ...] = ()) -> None:
        self.name: str = backend.name
        self._backend = backend
        self._cap = max_tokens_cap
        self._drop = frozenset(drop_betas)

    def build(self, body: Mapping[str, Any], backend_model: str,
              headers: Mapping[str, str]) -> UpstreamRequest:
        """The upstream request: the body with the backend model and the right headers."""
        out = dict(strip_unsigned_thinking(body), model=backend_model)  # type: ignore[arg-type]
        max_tokens = out.get("max_tokens")
        if self._cap and isinstance(max_tokens, int):
            out["max_tokens"] = min(max_tokens, self._cap)
        return UpstreamRequest(url=self._backend.url, headers=self.headers(headers),
                               body=_json.dumps(out), stream=bool(out.get("stream")),
                               backend_model=backend_model)

    def headers(self, client: Mapping[str, str]) -> dict[str, str]:
        """Auth, version and forwarded beta headers for one call."""
        out = {"content-type": "application/json",
               "anthropic-version": self._backend.api_version}
        if self._backend.api_key:
            out["x-api-key"] = self._backend.api_key
        betas = filter_betas(client.get("anthropic-beta"), self._drop)
        if betas:
            out["anthropic-beta"] = betas
        return out

    def parse(self, data: bytes, request: Mapping[str, Any],
              unknown: UnknownParts | None = None) -> dict[str, Any]:
        """The upstream message with the requested model name (every block passes
        through, so nothing goes to `unknown`)."""
        try:
            message = json.loads(data)
        except ValueError as exc:
            raise StreamBrokenError(f"{self.name} upstream sent invalid JSON") from exc
        if not isinstance(message, dict) or message.get("type") != "message":
            raise StreamBrokenError(f"{self.name} upstream sent something that is not a message")
        message["model"] = str(request.get("model", ""))
        return message

    def relay(self, request: Mapping[str, Any]) -> AnthropicRelay:
        """A relay for one streaming call."""
        return AnthropicRelay(str(request.get("model", "")))

    def error(self, status: int, data: bytes, headers: Mapping[str, str]) -> LynkrError:
        """The mapped upstream error."""
        return map_status(self.name, status, data, headers)

    def count_url(self) -> str:
        """The backend's token-counting endpoint."""
        return self._backend.url + "/count_tokens"
