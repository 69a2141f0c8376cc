"""Databricks model serving adapter: OpenAI chat bodies at `/serving-endpoints/<n>/invocations`.

The endpoint is `DATABRICKS_ENDPOINT_PATH` unless the family map (`MODEL_DEFAULT`,
`MODEL_OPUS`, …) names a backend model, which then is the serving endpoint's name.
Databricks error bodies (`{"error_code": …, "message": …}`) are mapped by their
`error_code` where it is more precise than the HTTP status.

Claude endpoints (an endpoint or model name containing `claude`) get the request's
`thinking` setting, as Databricks documents for hybrid reasoning models:
`{"type":"enabled","budget_tokens":N}` passes as it is, and Claude Code's
`{"type":"adaptive"}` becomes `enabled` with a budget of half of `max_tokens` (at least
1,024, at most 31,999: Claude Code's own budget), since chat completions document no
adaptive mode. Signed thinking goes back as reasoning parts (`to_openai_request`);
Databricks documents no PDF input, so PDF documents are refused with a 400.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from lynkr.errors import LynkrError, UpstreamStatusError
from lynkr.providers._openai import OpenAIAdapter
from lynkr.providers._settings import BackendSettings
from lynkr.providers._upstream import map_status, parse_retry_after

__all__ = ["DATABRICKS_ERROR_CODES", "DatabricksAdapter"]

DATABRICKS_ERROR_CODES: dict[str, tuple[int, str]] = {
    "REQUEST_LIMIT_EXCEEDED": (429, "rate_limit_error"),
    "RESOURCE_EXHAUSTED": (429, "rate_limit_error"),
    "TEMPORARILY_UNAVAILABLE": (529, "overloaded_error"),
    "BAD_REQUEST": (400, "invalid_request_error"),
    "INVALID_PARAMETER_VALUE": (400, "invalid_request_error"),
    "MALFORMED_REQUEST": (400, "invalid_request_error"),
}
"""Databricks `error_code` → (client status, Anthropic error type)."""


class DatabricksAdapter(OpenAIAdapter):
    """The adapter for `databricks` backends."""

    pdf_files = False

    def __init__(self, backend: BackendSettings, *, max_tokens_cap: int | None = None,
                 endpoints: frozenset[str] = frozenset()) -> None:
        super().__init__(backend, max_tokens_cap=max_tokens_cap)
        self._endpoints = endpoints  # backend model names the family map uses

    def url_for(self, backend_model: str) -> str:
        """The configured endpoint, or the serving endpoint the family map names."""
        if backend_model not in self._endpoints:
            return self._backend.url
        name = quote(backend_model, safe="")
        return f"{self._backend.base_url}/serving-endpoints/{name}/invocations"

    def body_for(self, body: Mapping[str, Any], backend_model: str) -> dict[str, Any]:
        """The chat body without `model`: the endpoint decides the model."""
        out = super().body_for(body, backend_model)
        out.pop("model", None)
        thinking = body.get("thinking")
        if isinstance(thinking, dict) and "claude" in self.url_for(backend_model).lower() + (
                backend_model.lower()):
            setting = _thinking_for(thinking, body.get("max_tokens"))
            if setting is not None:
                out["thinking"] = setting
        return out

    def error(self, status: int, data: bytes, headers: Mapping[str, str]) -> LynkrError:
        """Map by `error_code` when Databricks sent one, else by status."""
        mapped = map_status(self.name, status, data, headers)
        try:
            code = json.loads(data).get("error_code")
        except (ValueError, AttributeError):
            return mapped
        if code not in DATABRICKS_ERROR_CODES:
            return mapped
        client_status, error_type = DATABRICKS_ERROR_CODES[code]
        return UpstreamStatusError(mapped.message, status=client_status, error_type=error_type,
                                   upstream_status=status, retry_after=parse_retry_after(headers))


def _thinking_for(thinking: Mapping[str, Any], max_tokens: object) -> dict[str, Any] | None:
    """The `thinking` body field for a Databricks Claude endpoint (module docstring)."""
    kind = thinking.get("type")
    if kind == "enabled" and isinstance(thinking.get("budget_tokens"), int):
        return {"type": "enabled", "budget_tokens": thinking["budget_tokens"]}
    if kind == "adaptive":
        cap = max_tokens if isinstance(max_tokens, int) else 2048
        budget = max(1024, min(cap // 2, 31_999))
        return {"type": "enabled", "budget_tokens": budget}
    return None
