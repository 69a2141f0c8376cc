"""Shared translation rules: betas, unsigned thinking, schemas, usage."""

from __future__ import annotations

from lynkr.providers import (
    Usage,
    clean_schema,
    filter_betas,
    strip_unsigned_thinking,
    usage_from_openai,
)


def test_filter_betas_removes_rejected_betas():
    """Betas a backend rejects are removed; the rest keep their order."""
    header = "claude-code-20250219, context-1m-2025-08-07,interleaved-thinking-2025-05-14"
    assert filter_betas(header, {"context-1m-2025-08-07"}) == \
        "claude-code-20250219,interleaved-thinking-2025-05-14"


def test_filter_betas_returns_none_when_nothing_is_left():
    """An emptied header is not sent at all."""
    assert filter_betas("a", {"a"}) is None
    assert filter_betas(None, ()) is None


def test_strip_unsigned_thinking_removes_only_unsigned_blocks():
    """Signed thinking stays, unsigned thinking goes."""
    request = {"model": "m", "messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "ours", "signature": ""},
            {"type": "thinking", "thinking": "theirs", "signature": "sig"},
            {"type": "text", "text": "a"}]}]}
    out = strip_unsigned_thinking(request)
    assert [b.get("thinking") for b in out["messages"][1]["content"]] == ["theirs", None]
    assert request["messages"][1]["content"][0]["thinking"] == "ours"  # input untouched


def test_strip_unsigned_thinking_returns_the_same_object_when_clean():
    """Nothing to strip means no copy of a large body."""
    request = {"model": "m", "messages": [{"role": "user", "content": "q"}]}
    assert strip_unsigned_thinking(request) is request


def test_strip_unsigned_thinking_keeps_an_emptied_message_non_empty():
    """An assistant message of only unsigned thinking keeps a non-empty placeholder."""
    request = {"messages": [{"role": "assistant", "content": [
        {"type": "thinking", "thinking": "x"}]}]}
    content = strip_unsigned_thinking(request)["messages"][0]["content"]
    assert content[0]["type"] == "text"
    assert content[0]["text"]


def test_clean_schema_keeps_a_property_named_like_a_dropped_key():
    """A property called $schema is data, not a keyword, and is kept."""
    schema = {"$schema": "x", "type": "object", "properties": {"$schema": {"type": "string"}}}
    assert clean_schema(schema) == {"type": "object",
                                    "properties": {"$schema": {"type": "string"}}}


def test_usage_from_openai_understands_deepseek_cache_hits():
    """prompt_cache_hit_tokens count as cache reads."""
    usage = usage_from_openai({"prompt_tokens": 50, "completion_tokens": 2,
                               "prompt_cache_hit_tokens": 30})
    assert usage == Usage(input_tokens=20, output_tokens=2, cache_read_input_tokens=30)


def test_usage_from_openai_tolerates_missing_or_bad_values():
    """Absent or non-numeric usage gives zeros, never a crash."""
    assert usage_from_openai(None) == Usage()
    assert usage_from_openai({"prompt_tokens": "x", "completion_tokens": None}) == Usage()
