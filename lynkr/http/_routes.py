"""The Anthropic-compatible endpoints served by Quart: count_tokens, models, the root.

`POST /v1/messages` itself is not here: it has one handler, `GatewayApp` in
`lynkr/http/_fast.py`, in front of this app.
"""

from __future__ import annotations

import json
from typing import Any

import trio
from quart import Blueprint, Response, current_app, request

from lynkr.orchestrator import CallStats, fetch_body
from lynkr.providers import (
    AnthropicAdapter,
    UpstreamRequest,
    count_request_tokens,
    parse_json_body,
    validate_count_tokens_request,
)

__all__ = ["MODEL_ALIASES", "api"]

api = Blueprint("api", __name__)

MODEL_ALIASES = {"opus": "claude-opus-4-6", "sonnet": "claude-sonnet-4-6",
                 "haiku": "claude-haiku-4-5"}
"""The Claude model name `/v1/models` lists for each mapped family."""


def _system() -> Any:
    return current_app.extensions["lynkr"]


async def _read_json() -> tuple[Any, int]:
    data = await request.get_data(cache=False, as_text=False)
    assert isinstance(data, bytes)  # as_text=False
    return parse_json_body(data), len(data)


@api.route("/", methods=["GET", "HEAD"])
async def root() -> Response:
    """Claude Code sends `HEAD /` at start; any 200 will do."""
    return Response(json.dumps({"name": "lynkr", "status": "ok"}),
                    content_type="application/json")


@api.post("/v1/messages/count_tokens")
async def count_tokens() -> Response:
    """The backend's own count where it has one (Anthropic, Azure), else the offline count."""
    body, _ = await _read_json()
    validate_count_tokens_request(body)
    system = _system()
    settings = system.settings.providers
    handle = system.handles.get(settings.provider)
    if handle is not None and isinstance(handle.adapter, AnthropicAdapter):
        backend_model, _ = settings.models.resolve(str(body.get("model", "")))
        upstream = handle.adapter.build(body, backend_model,
                                        {k.lower(): v for k, v in request.headers.items()})
        count_call = UpstreamRequest(url=handle.adapter.count_url(), headers=upstream.headers,
                                  body=upstream.body, stream=False, backend_model=backend_model)
        data = await fetch_body(handle, count_call, settings.resilience, CallStats())
        return Response(data, content_type="application/json")
    counted = await trio.to_thread.run_sync(count_request_tokens, body)  # CPU-bound
    return Response(json.dumps({"input_tokens": counted}), content_type="application/json")


@api.get("/v1/models")
async def models() -> Response:
    """The mapped models in Anthropic's list shape."""
    settings = _system().settings.providers
    data = []
    for family, target in settings.models.listed():
        model_id = MODEL_ALIASES.get(family, target)
        data.append({"type": "model", "id": model_id, "display_name": f"{model_id} → {target}",
                     "created_at": "2025-01-01T00:00:00Z"})
    return Response(json.dumps({"data": data, "has_more": False,
                                "first_id": data[0]["id"] if data else None,
                                "last_id": data[-1]["id"] if data else None}),
                    content_type="application/json")

