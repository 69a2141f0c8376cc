"""Providers: the Anthropic ⇄ OpenAI translation, SSE, token counting and the adapters.

Pure translation lives in `_to_openai`, `_from_openai`, `_translate` and the streaming
state machines `_stream` (OpenAI → Anthropic SSE) and `_stream_anthropic` (pass-through);
`_sse` encodes and parses server-sent events; `_tokens` counts tokens offline;
`_validate` checks incoming bodies; `_wire` types the JSON shapes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lynkr._lazy import lazy_exports

if TYPE_CHECKING:
    from lynkr.providers._anthropic import (
        AnthropicAdapter,
        AnthropicRelay,
    )
    from lynkr.providers._databricks import (
        DATABRICKS_ERROR_CODES,
        DatabricksAdapter,
    )
    from lynkr.providers._from_openai import from_openai_response
    from lynkr.providers._openai import (
        OpenAIAdapter,
    )
    from lynkr.providers._parts import UnknownParts
    from lynkr.providers._pool import pool_statistics, pooled_client, send_pooled
    from lynkr.providers._settings import (
        PROVIDER_KINDS,
        REQUIRED_VARIABLES,
        BackendSettings,
        ModelMap,
        ProviderKind,
        ProviderSettings,
        ResilienceSettings,
    )
    from lynkr.providers._sse import SSEEvent, SSEParser, encode_sse
    from lynkr.providers._stream import (
        MESSAGE_STOP_FRAME,
        OpenAIStreamTranslator,
        error_frame,
        error_type_for,
    )
    from lynkr.providers._stream_anthropic import AnthropicStreamAssembler, encode_message_stream
    from lynkr.providers._to_openai import to_openai_request
    from lynkr.providers._tokens import count_request_tokens, count_text_tokens, image_tokens
    from lynkr.providers._translate import (
        clean_schema,
        filter_betas,
        stop_reason_for,
        strip_unsigned_thinking,
        usage_from_openai,
    )
    from lynkr.providers._transport import (
        H11Transport,
        StaleConnectionError,
        TransportStatistics,
    )
    from lynkr.providers._upstream import (
        RETRYABLE_STATUSES,
        Adapter,
        StreamRelay,
        UpstreamRequest,
        error_message_from_body,
        map_status,
        parse_retry_after,
    )
    from lynkr.providers._validate import (
        parse_json_body,
        validate_count_tokens_request,
        validate_messages_request,
    )
    from lynkr.providers._wire import (
        AnthropicRequest,
        AnthropicResponse,
        ChatCompletion,
        ChatRequest,
        StreamOutcome,
        Usage,
    )

# Every CLI command reads the settings, and `lynkr.config` imports `_settings`, which runs
# this file: the adapters (httpx, trio, the tokenizer) are imported on first use (PEP 562),
# as in `lynkr.mcp`, so `lynkr sessions` and the other quick commands never load them
# (tools/bench_cli_startup.py). A new export goes in both the block above and this table.
_EXPORTS = {
    "DATABRICKS_ERROR_CODES": "lynkr.providers._databricks",
    "MESSAGE_STOP_FRAME": "lynkr.providers._stream",
    "PROVIDER_KINDS": "lynkr.providers._settings",
    "REQUIRED_VARIABLES": "lynkr.providers._settings",
    "RETRYABLE_STATUSES": "lynkr.providers._upstream",
    "Adapter": "lynkr.providers._upstream",
    "AnthropicAdapter": "lynkr.providers._anthropic",
    "AnthropicRelay": "lynkr.providers._anthropic",
    "AnthropicRequest": "lynkr.providers._wire",
    "AnthropicResponse": "lynkr.providers._wire",
    "AnthropicStreamAssembler": "lynkr.providers._stream_anthropic",
    "BackendSettings": "lynkr.providers._settings",
    "ChatCompletion": "lynkr.providers._wire",
    "ChatRequest": "lynkr.providers._wire",
    "DatabricksAdapter": "lynkr.providers._databricks",
    "H11Transport": "lynkr.providers._transport",
    "ModelMap": "lynkr.providers._settings",
    "OpenAIAdapter": "lynkr.providers._openai",
    "OpenAIStreamTranslator": "lynkr.providers._stream",
    "ProviderKind": "lynkr.providers._settings",
    "ProviderSettings": "lynkr.providers._settings",
    "ResilienceSettings": "lynkr.providers._settings",
    "SSEEvent": "lynkr.providers._sse",
    "SSEParser": "lynkr.providers._sse",
    "StreamOutcome": "lynkr.providers._wire",
    "StreamRelay": "lynkr.providers._upstream",
    "StaleConnectionError": "lynkr.providers._transport",
    "TransportStatistics": "lynkr.providers._transport",
    "UnknownParts": "lynkr.providers._parts",
    "UpstreamRequest": "lynkr.providers._upstream",
    "Usage": "lynkr.providers._wire",
    "clean_schema": "lynkr.providers._translate",
    "count_request_tokens": "lynkr.providers._tokens",
    "count_text_tokens": "lynkr.providers._tokens",
    "encode_message_stream": "lynkr.providers._stream_anthropic",
    "encode_sse": "lynkr.providers._sse",
    "error_frame": "lynkr.providers._stream",
    "error_message_from_body": "lynkr.providers._upstream",
    "error_type_for": "lynkr.providers._stream",
    "filter_betas": "lynkr.providers._translate",
    "from_openai_response": "lynkr.providers._from_openai",
    "image_tokens": "lynkr.providers._tokens",
    "map_status": "lynkr.providers._upstream",
    "parse_json_body": "lynkr.providers._validate",
    "parse_retry_after": "lynkr.providers._upstream",
    "pool_statistics": "lynkr.providers._pool",
    "pooled_client": "lynkr.providers._pool",
    "send_pooled": "lynkr.providers._pool",
    "stop_reason_for": "lynkr.providers._translate",
    "strip_unsigned_thinking": "lynkr.providers._translate",
    "to_openai_request": "lynkr.providers._to_openai",
    "usage_from_openai": "lynkr.providers._translate",
    "validate_count_tokens_request": "lynkr.providers._validate",
    "validate_messages_request": "lynkr.providers._validate",
}


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())


__all__ = [
    "DATABRICKS_ERROR_CODES",
    "MESSAGE_STOP_FRAME",
    "PROVIDER_KINDS",
    "REQUIRED_VARIABLES",
    "RETRYABLE_STATUSES",
    "Adapter",
    "AnthropicAdapter",
    "AnthropicRelay",
    "AnthropicRequest",
    "AnthropicResponse",
    "AnthropicStreamAssembler",
    "BackendSettings",
    "ChatCompletion",
    "ChatRequest",
    "DatabricksAdapter",
    "H11Transport",
    "ModelMap",
    "OpenAIAdapter",
    "OpenAIStreamTranslator",
    "ProviderKind",
    "ProviderSettings",
    "ResilienceSettings",
    "SSEEvent",
    "SSEParser",
    "StaleConnectionError",
    "StreamOutcome",
    "StreamRelay",
    "TransportStatistics",
    "UnknownParts",
    "UpstreamRequest",
    "Usage",
    "clean_schema",
    "count_request_tokens",
    "count_text_tokens",
    "encode_message_stream",
    "encode_sse",
    "error_frame",
    "error_message_from_body",
    "error_type_for",
    "filter_betas",
    "from_openai_response",
    "image_tokens",
    "map_status",
    "parse_json_body",
    "parse_retry_after",
    "pool_statistics",
    "pooled_client",
    "send_pooled",
    "stop_reason_for",
    "strip_unsigned_thinking",
    "to_openai_request",
    "usage_from_openai",
    "validate_count_tokens_request",
    "validate_messages_request",
]
