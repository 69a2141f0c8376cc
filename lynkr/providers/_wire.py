"""Wire shapes: Anthropic Messages and OpenAI chat-completions JSON, typed at the edge.

The `TypedDict`s describe the JSON the gateway receives and sends; they carry `Literal`
type tags so mypy can narrow content blocks and SSE events. They are descriptions, not
validators: `lynkr.providers._validate` checks an incoming body, and the translators
read upstream JSON defensively (`.get`) because backends differ. Unknown keys are
allowed everywhere (`total=False` where the API makes keys optional).

The frozen dataclasses at the bottom are the internal facts parsed from those shapes
(`Usage`, `StreamOutcome`); they are what the rest of Lynkr passes around.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, TypedDict

__all__ = [
    "AnthropicContentBlock",
    "AnthropicMessage",
    "AnthropicRequest",
    "AnthropicResponse",
    "AnthropicTool",
    "AnthropicUsage",
    "ChatChunk",
    "ChatCompletion",
    "ChatMessage",
    "ChatRequest",
    "ChatToolCall",
    "ImageBlock",
    "StreamOutcome",
    "TextBlock",
    "ThinkingBlock",
    "ToolResultBlock",
    "ToolUseBlock",
    "Usage",
]

# --- Anthropic Messages ---------------------------------------------------------------


class TextBlock(TypedDict):
    """`{"type":"text","text":…}` (may carry `cache_control`, `citations`)."""

    type: Literal["text"]
    text: str


class ImageSource(TypedDict, total=False):
    """An image source: base64 data with a media type, or a URL."""

    type: Literal["base64", "url"]
    media_type: str
    data: str
    url: str


class ImageBlock(TypedDict):
    """`{"type":"image","source":…}`."""

    type: Literal["image"]
    source: ImageSource


class ToolUseBlock(TypedDict):
    """The model calls a tool: id, name and the parsed JSON input."""

    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]


class ToolResultBlock(TypedDict):
    """The client answers a tool call; content is a string or text/image blocks."""

    type: Literal["tool_result"]
    tool_use_id: str
    content: NotRequired[str | list[TextBlock | ImageBlock]]
    is_error: NotRequired[bool]


class ThinkingBlock(TypedDict):
    """Model reasoning; `signature` proves it came from Anthropic (empty when it did not)."""

    type: Literal["thinking"]
    thinking: str
    signature: NotRequired[str]


class RedactedThinkingBlock(TypedDict):
    """Encrypted reasoning only an Anthropic upstream can read."""

    type: Literal["redacted_thinking"]
    data: str


AnthropicContentBlock = (
    TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock
    | RedactedThinkingBlock
)


class AnthropicMessage(TypedDict):
    """One conversation turn (Claude Code may also send `role: "system"` mid-conversation)."""

    role: Literal["user", "assistant", "system"]
    content: str | list[AnthropicContentBlock]


class AnthropicTool(TypedDict, total=False):
    """A client tool definition (server tools carry a `type` instead of `input_schema`)."""

    name: str
    description: str
    input_schema: dict[str, Any]
    type: str
    cache_control: dict[str, Any]


class AnthropicRequest(TypedDict, total=False):
    """A `POST /v1/messages` body (the keys Lynkr reads; others pass through)."""

    model: str
    messages: list[AnthropicMessage]
    max_tokens: int
    system: str | list[TextBlock]
    tools: list[AnthropicTool]
    tool_choice: dict[str, Any]
    stream: bool
    temperature: float
    top_p: float
    top_k: int
    stop_sequences: list[str]
    metadata: dict[str, Any]
    thinking: dict[str, Any]
    output_config: dict[str, Any]
    context_management: dict[str, Any]


class AnthropicUsage(TypedDict, total=False):
    """Token usage as Anthropic reports it."""

    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int
    cache_creation_input_tokens: int


class AnthropicResponse(TypedDict):
    """A complete (non-streaming) Messages response."""

    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    model: str
    content: list[AnthropicContentBlock]
    stop_reason: str | None
    stop_sequence: str | None
    usage: AnthropicUsage


# --- OpenAI chat completions ----------------------------------------------------------


class ChatFunctionCall(TypedDict):
    """`{"name":…,"arguments": "<JSON text>"}`."""

    name: str
    arguments: str


class ChatToolCall(TypedDict):
    """An assistant tool call in a chat message."""

    id: str
    type: Literal["function"]
    function: ChatFunctionCall


class ChatMessage(TypedDict, total=False):
    """A chat message: system, user, assistant (with tool_calls) or tool."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None
    tool_calls: list[ChatToolCall]
    tool_call_id: str
    reasoning_content: str


class ChatRequest(TypedDict, total=False):
    """A `POST /chat/completions` body."""

    model: str
    messages: list[ChatMessage]
    max_tokens: int
    stream: bool
    stream_options: dict[str, Any]
    tools: list[dict[str, Any]]
    tool_choice: str | dict[str, Any]
    parallel_tool_calls: bool
    stop: list[str]
    temperature: float
    top_p: float
    response_format: dict[str, Any]
    reasoning_effort: str


class ChatChoice(TypedDict, total=False):
    """One choice of a completion (`message`) or a chunk (`delta`)."""

    index: int
    message: ChatMessage
    delta: dict[str, Any]
    finish_reason: str | None


class ChatCompletion(TypedDict, total=False):
    """A non-streaming chat completion."""

    id: str
    object: str
    model: str
    choices: list[ChatChoice]
    usage: dict[str, Any]


class ChatChunk(TypedDict, total=False):
    """One `data:` payload of a streaming chat completion."""

    id: str
    object: str
    choices: list[ChatChoice]
    usage: dict[str, Any] | None
    error: dict[str, Any]


# --- internal facts -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage in Anthropic's terms (`input_tokens` excludes cached reads)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0

    def to_json(self) -> AnthropicUsage:
        """Anthropic's usage object (cache fields included only when non-zero)."""
        out: AnthropicUsage = {
            "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
        }
        if self.cache_read_input_tokens:
            out["cache_read_input_tokens"] = self.cache_read_input_tokens
        if self.cache_creation_input_tokens:
            out["cache_creation_input_tokens"] = self.cache_creation_input_tokens
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamOutcome:
    """How an upstream stream ended, once it has.

    `message` is the assembled Anthropic response when the stream completed; otherwise
    `error_type`/`error_message` say why it failed (`overloaded_error` makes Claude Code
    retry the stream, any other type makes it resend without streaming). `raw` is every
    byte received from upstream, for replay.
    """

    complete: bool
    message: AnthropicResponse | None = None
    error_type: str | None = None
    error_message: str | None = None
    raw: bytes = b""
    events: int = 0
    usage: Usage = field(default_factory=Usage)
    unknown: dict[str, int] = field(default_factory=dict)  # untranslated parts, by type
    untranslatable: bool = False  # failed because nothing in it could be translated
