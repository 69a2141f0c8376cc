"""Answers in each provider's dialect, written for these tests from the providers' docs.

Every `Dialect` is one answer a backend gives, twice: as the chunks of a stream and as a
non-streaming body, plus the Anthropic content blocks and stop reason a client must get
from it. The payloads follow what each provider documents (the text in them is ours):

- Databricks Foundation Model API, Claude with reasoning ("Query reasoning models"):
  `content` is a list — `{"type":"reasoning","summary":[{"type":"summary_text","text",
  "signature"}]}` then `{"type":"text"}` — in stream deltas as in bodies; the signature
  arrives on a last summary item with empty text; encrypted reasoning is a
  `summary_encrypted_text` item.
- Mistral Magistral: `{"type":"thinking","thinking":[{"type":"text","text"}]}` parts
  before the answer text.
- DeepSeek (`deepseek-reasoner`) and vLLM's reasoning parsers: `reasoning_content`.
- OpenRouter: `reasoning` plus `reasoning_details` (`reasoning.text` with a signature,
  `reasoning.encrypted`), and `: OPENROUTER PROCESSING` SSE comment lines.
- Azure OpenAI: a first stream chunk with empty `choices` and `prompt_filter_results`,
  `content_filter_results` on choices, and a filter-only chunk with no delta.
- Groq (`reasoning_format: parsed`) and Ollama's OpenAI compatibility: `reasoning`.
- OpenAI: a refusal in the `refusal` field (stop reason `refusal` for the client).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["DBX_SIG", "DBX_TOOL_THINK", "DIALECTS", "Dialect", "chunk", "completion", "text",
           "thinking", "tool_use"]

USAGE = {"prompt_tokens": 31, "completion_tokens": 57, "total_tokens": 88}


def chunk(delta: dict[str, Any] | None, finish: str | None = None, *,
          choice: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    """One `chat.completion.chunk` with a single choice (`delta=None`: no delta key)."""
    one: dict[str, Any] = {"index": 0, "finish_reason": finish, **(choice or {})}
    if delta is not None:
        one["delta"] = delta
    return {"id": "chatcmpl-dialect", "object": "chat.completion.chunk",
            "created": 1765000000, "model": "backend-model", "choices": [one], **top}


def completion(message: dict[str, Any], finish: str, *, choice: dict[str, Any] | None = None,
               **top: Any) -> dict[str, Any]:
    """A non-streaming `chat.completion` with a single choice."""
    return {"id": "chatcmpl-dialect", "object": "chat.completion", "created": 1765000000,
            "model": "backend-model",
            "choices": [{"index": 0, "message": {"role": "assistant", **message},
                         "finish_reason": finish, **(choice or {})}],
            "usage": USAGE, **top}


def _call(index: int, call_id: str, name: str, arguments: str = "") -> dict[str, Any]:
    return {"tool_calls": [{"index": index, "id": call_id, "type": "function",
                            "function": {"name": name, "arguments": arguments}}]}


def _args(index: int, piece: str) -> dict[str, Any]:
    return {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}


def _function(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _tool(name: str, **properties: str) -> dict[str, Any]:
    return {"name": name, "description": f"The {name} tool.",
            "input_schema": {"type": "object",
                             "properties": {k: {"type": v} for k, v in properties.items()}}}


def thinking(text: str, signature: str = "") -> dict[str, Any]:
    """An expected thinking block."""
    return {"type": "thinking", "thinking": text, "signature": signature}


def text(value: str) -> dict[str, Any]:
    """An expected text block."""
    return {"type": "text", "text": value}


def tool_use(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """An expected tool_use block (its id is the backend's, not compared)."""
    return {"type": "tool_use", "name": name, "input": arguments}


@dataclass(frozen=True, slots=True)
class Dialect:
    """One answer in a provider's dialect, streamed and not, and what the client gets."""

    name: str
    provider: str  # the Lynkr backend: "openai" or "databricks"
    chunks: list[Any]
    body: dict[str, Any]
    content: list[dict[str, Any]]
    stop_reason: str
    tools: list[dict[str, Any]] = field(default_factory=list)


# --- Databricks-hosted Claude with reasoning -----------------------------------------------

DBX_THINK = ("Water boils lower where the air is thin. At 2,000 m the pressure is near "
             "80 kPa, so the boiling point drops to about 93 degrees.")
DBX_SIG = "EpYBCkgIBhABGAIiQHfq9wKb3lT0c2lnbmVkLWJ5LXRoZS1iYWNrZW5kLWZvci10aGlzLXRlc3Q="
DBX_TEXT = "At 2,000 m, water boils at roughly 93 °C (199 °F)."
DBX_ENCRYPTED = "RURBVEEtZW5jcnlwdGVkLXJlYXNvbmluZy1ibG9iLXdyaXR0ZW4tZm9yLXRlc3Rz"


def _reasoning(piece: str, signature: str = "") -> dict[str, Any]:
    return {"type": "reasoning",
            "summary": [{"type": "summary_text", "text": piece, "signature": signature}]}


def _dbx_thinking_deltas(thought: str, signature: str) -> list[dict[str, Any]]:
    half = len(thought) // 2
    return [chunk({"role": "assistant", "content": [_reasoning(thought[:half])]}),
            chunk({"role": "assistant", "content": [_reasoning(thought[half:])]}),
            chunk({"role": "assistant", "content": [_reasoning("", signature)]})]


DATABRICKS_REASONING = Dialect(
    name="databricks-claude-reasoning", provider="databricks",
    chunks=[*_dbx_thinking_deltas(DBX_THINK, DBX_SIG),
            chunk({"role": "assistant", "content": [{"type": "text", "text": DBX_TEXT[:20]}]}),
            chunk({"role": "assistant", "content": [{"type": "text", "text": DBX_TEXT[20:]}]}),
            chunk({"role": "assistant", "content": ""}, "stop", usage=USAGE), "[DONE]"],
    body=completion({"content": [_reasoning(DBX_THINK, DBX_SIG),
                                 {"type": "text", "text": DBX_TEXT}]}, "stop"),
    content=[thinking(DBX_THINK, DBX_SIG), text(DBX_TEXT)], stop_reason="end_turn")

DBX_TOOL_THINK = "The user wants a three-day forecast for Zermatt; the forecast tool takes both."
DBX_TOOL_TEXT = "I'll fetch the forecast for Zermatt."
DBX_TOOL_ARGS = '{"city": "Zermatt", "days": 3}'
DATABRICKS_REASONING_TOOL = Dialect(
    name="databricks-claude-reasoning-tool", provider="databricks",
    chunks=[*_dbx_thinking_deltas(DBX_TOOL_THINK, DBX_SIG),
            chunk({"role": "assistant", "content": [{"type": "text", "text": DBX_TOOL_TEXT}]}),
            chunk(_call(0, "toolu_bdrk_01Forecast", "get_forecast")),
            chunk(_args(0, DBX_TOOL_ARGS[:12])), chunk(_args(0, DBX_TOOL_ARGS[12:])),
            chunk({"role": "assistant", "content": ""}, "tool_calls", usage=USAGE), "[DONE]"],
    body=completion({"content": [_reasoning(DBX_TOOL_THINK, DBX_SIG),
                                 {"type": "text", "text": DBX_TOOL_TEXT}],
                     "tool_calls": [_function("toolu_bdrk_01Forecast", "get_forecast",
                                              DBX_TOOL_ARGS)]}, "tool_calls"),
    content=[thinking(DBX_TOOL_THINK, DBX_SIG), text(DBX_TOOL_TEXT),
             tool_use("get_forecast", {"city": "Zermatt", "days": 3})],
    stop_reason="tool_use", tools=[_tool("get_forecast", city="string", days="integer")])

_ENCRYPTED_PART = {"type": "reasoning",
                   "summary": [{"type": "summary_encrypted_text", "data": DBX_ENCRYPTED}]}
DATABRICKS_REDACTED = Dialect(
    name="databricks-claude-redacted-reasoning", provider="databricks",
    chunks=[*_dbx_thinking_deltas(DBX_THINK, DBX_SIG),
            chunk({"role": "assistant", "content": [_ENCRYPTED_PART]}),
            chunk({"role": "assistant", "content": [{"type": "text", "text": DBX_TEXT}]}),
            chunk({"role": "assistant", "content": ""}, "stop", usage=USAGE), "[DONE]"],
    body=completion({"content": [_reasoning(DBX_THINK, DBX_SIG), _ENCRYPTED_PART,
                                 {"type": "text", "text": DBX_TEXT}]}, "stop"),
    content=[thinking(DBX_THINK, DBX_SIG),
             {"type": "redacted_thinking", "data": DBX_ENCRYPTED}, text(DBX_TEXT)],
    stop_reason="end_turn")

# --- Mistral Magistral -----------------------------------------------------------------------

MISTRAL_THINK = ["Seven bridges, each crossed once? ", "Euler showed the degrees decide it."]
MISTRAL_TEXT = "No: all four land masses have an odd number of bridges, so no such walk exists."


def _mistral_thinking(piece: str) -> dict[str, Any]:
    return {"type": "thinking", "thinking": [{"type": "text", "text": piece}]}


MISTRAL = Dialect(
    name="mistral-magistral", provider="openai",
    chunks=[chunk({"role": "assistant", "content": [_mistral_thinking(MISTRAL_THINK[0])]}),
            chunk({"content": [_mistral_thinking(MISTRAL_THINK[1])]}),
            chunk({"content": [{"type": "text", "text": MISTRAL_TEXT[:30]}]}),
            chunk({"content": MISTRAL_TEXT[30:]}),
            chunk({"content": ""}, "stop", usage=USAGE), "[DONE]"],
    body=completion({"content": [_mistral_thinking("".join(MISTRAL_THINK)),
                                 {"type": "text", "text": MISTRAL_TEXT}],
                     "tool_calls": None}, "stop"),
    content=[thinking("".join(MISTRAL_THINK)), text(MISTRAL_TEXT)], stop_reason="end_turn")

# --- DeepSeek reasoner: reasoning_content, two tool calls --------------------------------------

DEEPSEEK_THINK = "Two files were named; reading both at once saves a round trip."
DEEPSEEK = Dialect(
    name="deepseek-reasoner-tools", provider="openai",
    chunks=[chunk({"role": "assistant", "content": None, "reasoning_content": ""}),
            chunk({"content": None, "reasoning_content": DEEPSEEK_THINK[:25]}),
            chunk({"content": None, "reasoning_content": DEEPSEEK_THINK[25:]}),
            chunk(_call(0, "call_00_ds1", "read_file", "")),
            chunk(_args(0, '{"path": "notes/')), chunk(_args(0, 'todo.md"}')),
            chunk(_call(1, "call_01_ds2", "read_file", '{"path": "notes/done.md"}')),
            chunk({"content": ""}, "tool_calls", usage=USAGE), "[DONE]"],
    body=completion({"content": "", "reasoning_content": DEEPSEEK_THINK,
                     "tool_calls": [_function("call_00_ds1", "read_file",
                                              '{"path": "notes/todo.md"}'),
                                    _function("call_01_ds2", "read_file",
                                              '{"path": "notes/done.md"}')]},
                    "tool_calls", system_fingerprint="fp_dialect"),
    content=[thinking(DEEPSEEK_THINK), tool_use("read_file", {"path": "notes/todo.md"}),
             tool_use("read_file", {"path": "notes/done.md"})],
    stop_reason="tool_use", tools=[_tool("read_file", path="string")])

# --- OpenRouter: reasoning + reasoning_details (signed, encrypted), comment lines ------------

OR_THINK = ["Prime factors of 221: ", "not even, not 3, not 5, not 7, ", "11 no, 13 * 17 yes."]
OR_SIG = "ErcBCkgIBxABGAIiQE9wZW5Sb3V0ZXItcGFzc2VkLWFudGhyb3BpYy1zaWduYXR1cmU="
OR_ENCRYPTED = "T1BFTlJPVVRFUi1yZWRhY3RlZC1yZWFzb25pbmctZGF0YQ=="
OR_TEXT = "221 = 13 * 17."
_OR = {"format": "anthropic-claude-v1", "index": 0}


def _or_delta(**fields: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": "", "reasoning": None, "reasoning_details": [],
            **fields}


OPENROUTER = Dialect(
    name="openrouter-reasoning-details", provider="openai",
    chunks=[": OPENROUTER PROCESSING",
            *[chunk(_or_delta(reasoning=p, reasoning_details=[
                {"type": "reasoning.text", "text": p, **_OR}]), provider="Anthropic")
              for p in OR_THINK],
            ": OPENROUTER PROCESSING",
            chunk(_or_delta(reasoning_details=[{"type": "reasoning.text", "signature": OR_SIG,
                                                **_OR}]), provider="Anthropic"),
            chunk(_or_delta(reasoning_details=[{"type": "reasoning.encrypted",
                                                "data": OR_ENCRYPTED, **_OR, "index": 1}]),
                  provider="Anthropic"),
            chunk(_or_delta(content=OR_TEXT[:6]), provider="Anthropic"),
            chunk(_or_delta(content=OR_TEXT[6:]), provider="Anthropic"),
            chunk(_or_delta(), "stop", choice={"native_finish_reason": "end_turn"},
                  provider="Anthropic"),
            {"id": "chatcmpl-dialect", "object": "chat.completion.chunk", "choices": [],
             "usage": {**USAGE, "cost": 0.00042}, "provider": "Anthropic"},
            "[DONE]"],
    body=completion({"content": OR_TEXT, "refusal": None, "reasoning": "".join(OR_THINK),
                     "reasoning_details": [
                         {"type": "reasoning.text", "text": "".join(OR_THINK),
                          "signature": OR_SIG, **_OR},
                         {"type": "reasoning.encrypted", "data": OR_ENCRYPTED, **_OR,
                          "index": 1}]},
                    "stop", choice={"native_finish_reason": "end_turn"}, provider="Anthropic"),
    content=[thinking("".join(OR_THINK), OR_SIG),
             {"type": "redacted_thinking", "data": OR_ENCRYPTED}, text(OR_TEXT)],
    stop_reason="end_turn")

# --- Azure OpenAI: prompt_filter_results first, content_filter_results on choices --------------

_SAFE = {k: {"filtered": False, "severity": "safe"}
         for k in ("hate", "self_harm", "sexual", "violence")}
AZURE_TEXT = "Let me open the build log."
AZURE_ARGS = '{"path": "build.log", "tail": 40}'
AZURE = Dialect(
    name="azure-openai-filters", provider="openai",
    chunks=[{"choices": [], "created": 0, "id": "", "model": "", "object": "",
             "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": _SAFE}]},
            chunk({"role": "assistant", "content": "", "refusal": None},
                  choice={"content_filter_results": {}}),
            chunk({"content": AZURE_TEXT[:13]}, choice={"content_filter_results": _SAFE}),
            chunk({"content": AZURE_TEXT[13:]}, choice={"content_filter_results": _SAFE}),
            chunk(_call(0, "call_az1", "read_log"), choice={"content_filter_results": {}}),
            chunk(_args(0, AZURE_ARGS), choice={"content_filter_results": {}}),
            chunk({}, "tool_calls", choice={"content_filter_results": {}}),
            chunk(None, choice={"content_filter_results": _SAFE,
                                "content_filter_offsets": {"check_offset": 0,
                                                           "start_offset": 0,
                                                           "end_offset": 26}}),
            "[DONE]"],
    body=completion({"content": AZURE_TEXT, "refusal": None,
                     "tool_calls": [_function("call_az1", "read_log", AZURE_ARGS)]},
                    "tool_calls", choice={"content_filter_results": _SAFE, "logprobs": None},
                    prompt_filter_results=[{"prompt_index": 0,
                                            "content_filter_results": _SAFE}]),
    content=[text(AZURE_TEXT), tool_use("read_log", {"path": "build.log", "tail": 40})],
    stop_reason="tool_use", tools=[_tool("read_log", path="string", tail="integer")])

# --- Groq (reasoning_format: parsed), vLLM (reasoning_content), Ollama (reasoning) ------------

GROQ_THINK = "A haiku has three lines of five, seven and five syllables."
GROQ_TEXT = "Morning fog lifting\nthe kettle starts its whistle\none more cup, then code"
GROQ = Dialect(
    name="groq-reasoning", provider="openai",
    chunks=[chunk({"role": "assistant", "content": None}, x_groq={"id": "req_dialect"}),
            chunk({"reasoning": GROQ_THINK[:20]}), chunk({"reasoning": GROQ_THINK[20:]}),
            chunk({"content": GROQ_TEXT[:21]}), chunk({"content": GROQ_TEXT[21:]}),
            chunk({}, "stop", x_groq={"id": "req_dialect", "usage": USAGE}), "[DONE]"],
    body=completion({"content": GROQ_TEXT, "reasoning": GROQ_THINK}, "stop",
                    x_groq={"id": "req_dialect"}),
    content=[thinking(GROQ_THINK), text(GROQ_TEXT)], stop_reason="end_turn")

VLLM_THINK = "List the planets by distance, then stop when the budget runs out."
VLLM_TEXT = "Mercury, Venus, Earth, Mars, Jup"
VLLM = Dialect(
    name="vllm-reasoning-length", provider="openai",
    chunks=[chunk({"role": "assistant", "content": ""}, choice={"logprobs": None}),
            chunk({"reasoning_content": VLLM_THINK[:30]}),
            chunk({"reasoning_content": VLLM_THINK[30:]}),
            chunk({"content": VLLM_TEXT[:15]}), chunk({"content": VLLM_TEXT[15:]}),
            chunk({"content": ""}, "length", choice={"stop_reason": None}),
            {"id": "chatcmpl-dialect", "object": "chat.completion.chunk", "choices": [],
             "usage": USAGE},
            "[DONE]"],
    body=completion({"content": VLLM_TEXT, "reasoning_content": VLLM_THINK,
                     "tool_calls": []}, "length", choice={"stop_reason": None}),
    content=[thinking(VLLM_THINK), text(VLLM_TEXT)], stop_reason="max_tokens")

OLLAMA_THINK = "They asked for the time in Tokyo; the clock tool wants a zone name."
OLLAMA_ARGS = '{"zone":"Asia/Tokyo"}'
OLLAMA = Dialect(
    name="ollama-reasoning-tool", provider="openai",
    chunks=[chunk({"role": "assistant", "content": "", "reasoning": OLLAMA_THINK[:30]}),
            chunk({"role": "assistant", "content": "", "reasoning": OLLAMA_THINK[30:]}),
            chunk({"role": "assistant", "content": "",
                   "tool_calls": [{"id": "call_ol1", "index": 0, "type": "function",
                                   "function": {"name": "clock", "arguments": OLLAMA_ARGS}}]}),
            chunk({"role": "assistant", "content": ""}, "tool_calls"), "[DONE]"],
    body=completion({"content": "", "reasoning": OLLAMA_THINK,
                     "tool_calls": [_function("call_ol1", "clock", OLLAMA_ARGS)]},
                    "tool_calls", system_fingerprint="fp_ollama"),
    content=[thinking(OLLAMA_THINK), tool_use("clock", {"zone": "Asia/Tokyo"})],
    stop_reason="tool_use", tools=[_tool("clock", zone="string")])

# --- OpenAI: a refusal -----------------------------------------------------------------------

REFUSAL = "I can't help with getting past that lock."
OPENAI_REFUSAL = Dialect(
    name="openai-refusal", provider="openai",
    chunks=[chunk({"role": "assistant", "content": None, "refusal": ""}),
            chunk({"refusal": REFUSAL[:16]}), chunk({"refusal": REFUSAL[16:]}),
            chunk({}, "stop"), "[DONE]"],
    body=completion({"content": None, "refusal": REFUSAL, "annotations": []}, "stop"),
    content=[text(REFUSAL)], stop_reason="refusal")

DIALECTS = [DATABRICKS_REASONING, DATABRICKS_REASONING_TOOL, DATABRICKS_REDACTED, MISTRAL,
            DEEPSEEK, OPENROUTER, AZURE, GROQ, VLLM, OLLAMA, OPENAI_REFUSAL]
"""Every dialect; each is replayed streaming and not."""
