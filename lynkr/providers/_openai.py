"""Adapter for OpenAI-compatible backends (OpenAI, OpenRouter, Ollama, vLLM, llama.cpp, LM Studio).

The request is translated by `to_openai_request` (pure), sent to
`$OPENAI_BASE_URL/chat/completions` with `Authorization: Bearer $OPENAI_API_KEY` when a
key is set (local servers need none); answers come back through `from_openai_response`
and, streaming, through `OpenAIStreamTranslator`. `anthropic-beta` never reaches these
backends. Thinking blocks go back as `OPENAI_REASONING_REPLAY` says (`to_openai_request`);
PDF documents go as `file` parts (OpenAI's shape: a server that does not take them
answers with its own 400, which the client sees).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from lynkr import _json
from lynkr.errors import LynkrError, StreamBrokenError
from lynkr.providers._from_openai import from_openai_response
from lynkr.providers._parts import UnknownParts
from lynkr.providers._settings import BackendSettings
from lynkr.providers._stream import OpenAIStreamTranslator
from lynkr.providers._to_openai import to_openai_request
from lynkr.providers._upstream import UpstreamRequest, map_status

__all__ = ["OpenAIAdapter"]


def _stop_sequences(body: Mapping[str, Any]) -> tuple[str, ...]:
    stops = body.get("stop_sequences")
    return tuple(s for s in stops if isinstance(s, str)) if isinstance(stops, list) else ()


class OpenAIAdapter:
    """The adapter for `openai` backends (and the base of Databricks')."""

    pdf_files = True  # the backend takes PDF documents as `file` parts

    def __init__(self, backend: BackendSettings, *, max_tokens_cap: int | None = None,
                 reasoning_replay: str = "auto") -> None:
        self.name: str = backend.name
        self._backend = backend
        self._cap = max_tokens_cap
        self._reasoning = reasoning_replay

    def url_for(self, backend_model: str) -> str:
        """The URL a request for `backend_model` goes to."""
        return self._backend.url

    def body_for(self, body: Mapping[str, Any], backend_model: str) -> dict[str, Any]:
        """The chat-completions body."""
        return dict(to_openai_request(body, model=backend_model,  # type: ignore[arg-type]
                                      max_tokens_cap=self._cap, reasoning=self._reasoning,
                                      pdf_files=self.pdf_files))

    def build(self, body: Mapping[str, Any], backend_model: str,
              headers: Mapping[str, str]) -> UpstreamRequest:
        """The upstream request (client headers are not forwarded)."""
        out = {"content-type": "application/json", "accept": "application/json"}
        if self._backend.api_key:
            out["authorization"] = f"Bearer {self._backend.api_key}"
        return UpstreamRequest(url=self.url_for(backend_model), headers=out,
                               body=_json.dumps(self.body_for(body, backend_model)),
                               stream=bool(body.get("stream")), backend_model=backend_model)

    def parse(self, data: bytes, request: Mapping[str, Any],
              unknown: UnknownParts | None = None) -> dict[str, Any]:
        """A chat completion as the Anthropic message for `request`; parts that could not
        be translated are noted in `unknown`."""
        try:
            completion = json.loads(data)
        except ValueError as exc:
            raise StreamBrokenError(f"{self.name} upstream sent invalid JSON") from exc
        if not isinstance(completion, dict):
            raise StreamBrokenError(f"{self.name} upstream sent something that is not an object")
        return dict(from_openai_response(completion,  # type: ignore[arg-type]
                                         model=str(request.get("model", "")),
                                         stop_sequences=_stop_sequences(request),
                                         unknown=unknown))

    def relay(self, request: Mapping[str, Any]) -> OpenAIStreamTranslator:
        """A translator for one streaming call."""
        return OpenAIStreamTranslator(model=str(request.get("model", "")),
                                      stop_sequences=_stop_sequences(request))

    def error(self, status: int, data: bytes, headers: Mapping[str, str]) -> LynkrError:
        """The mapped upstream error."""
        return map_status(self.name, status, data, headers)
