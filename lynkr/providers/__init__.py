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
    from lynkr.providers._stream import OpenAIStreamTranslator
    from lynkr.providers._stream_anthropic import AnthropicStreamAssembler, encode_message_stream
    from lynkr.providers._stream_reader import MESSAGE_STOP_FRAME, error_frame, error_type_for
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
# (tools/bench_cli_startup.py). A new export goes in the block above, this table and `__all__`
# (tests/lynkr/test_lazy.py checks that the three agree).
__getattr__ = lazy_exports(__name__, globals(), {
    "_anthropic": ("AnthropicAdapter", "AnthropicRelay"),
    "_databricks": ("DATABRICKS_ERROR_CODES", "DatabricksAdapter"),
    "_from_openai": ("from_openai_response",),
    "_openai": ("OpenAIAdapter",),
    "_parts": ("UnknownParts",),
    "_pool": ("pool_statistics", "pooled_client", "send_pooled"),
    "_settings": ("BackendSettings", "ModelMap", "PROVIDER_KINDS", "ProviderKind",
                  "ProviderSettings", "REQUIRED_VARIABLES", "ResilienceSettings"),
    "_sse": ("SSEEvent", "SSEParser", "encode_sse"),
    "_stream": ("OpenAIStreamTranslator",),
    "_stream_anthropic": ("AnthropicStreamAssembler", "encode_message_stream"),
    "_stream_reader": ("MESSAGE_STOP_FRAME", "error_frame", "error_type_for"),
    "_to_openai": ("to_openai_request",),
    "_tokens": ("count_request_tokens", "count_text_tokens", "image_tokens"),
    "_translate": ("clean_schema", "filter_betas", "stop_reason_for", "strip_unsigned_thinking",
                   "usage_from_openai"),
    "_transport": ("H11Transport", "StaleConnectionError", "TransportStatistics"),
    "_upstream": ("Adapter", "RETRYABLE_STATUSES", "StreamRelay", "UpstreamRequest",
                  "error_message_from_body", "map_status", "parse_retry_after"),
    "_validate": ("parse_json_body", "validate_count_tokens_request", "validate_messages_request"),
    "_wire": ("AnthropicRequest", "AnthropicResponse", "ChatCompletion", "ChatRequest",
              "StreamOutcome", "Usage"),
})


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
