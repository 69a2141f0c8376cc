"""The prompt cache: hits without the upstream over real HTTP, TTL, LRU, what is stored,
restarts; the key and the warm-up."""

from __future__ import annotations

import json
import time

import trio

from eventstore import SqliteRecorder, make_blob
from eventstore.events.session import CacheEvicted, CacheHit, CacheStored, ModelResponded
from lynkr.config import PromptCacheSettings
from lynkr.orchestrator import PromptCache, request_key
from lynkr.providers import SSEParser
from tests.lynkr.http.gateway import running_gateway

HELLO = {"model": "claude-sonnet-4-6", "max_tokens": 64,
         "messages": [{"role": "user", "content": "hello"}]}
SESSION = {"X-Claude-Code-Session-Id": "cache-test"}
ON = {"PROMPT_CACHE_ENABLED": "true"}


def ask(text: str, **extra: object) -> dict[str, object]:
    """A one-message request."""
    return {**HELLO, "messages": [{"role": "user", "content": text}], **extra}


async def events_of(gw, session="cache-test"):
    """The events of a session stream, in order."""
    return [r.event for r in await gw.system.store.read_stream(f"session-{session}")]


def sse_events(text: str) -> list[tuple[str, dict]]:
    """(event name, data) of an SSE body."""
    return [(e.event, json.loads(e.data)) for e in SSEParser().feed(text.encode())]


async def test_a_repeated_request_is_answered_without_the_upstream(tmp_path):
    """The second identical request is a hit: no upstream call, cache reads, CacheHit."""
    async with running_gateway(tmp_path, env=ON) as gw:
        first = (await gw.post("/v1/messages", HELLO, headers=SESSION)).json()
        second = (await gw.post("/v1/messages", HELLO, headers=SESSION)).json()
        events = await events_of(gw)
        assert len(gw.fake.requests) == 1
    assert second["content"] == first["content"]
    assert second["id"] != first["id"]
    assert second["usage"]["input_tokens"] == 0
    assert second["usage"]["cache_read_input_tokens"] > 0
    assert first["usage"]["input_tokens"] == 0  # a stored miss reports it as cache writes
    assert first["usage"]["cache_creation_input_tokens"] == \
        second["usage"]["cache_read_input_tokens"]
    hits = [e for e in events if isinstance(e, CacheHit)]
    stored = [e for e in events if isinstance(e, CacheStored)]
    assert len(hits) == len(stored) == 1
    assert hits[0].key == stored[0].key
    assert hits[0].turn == 2
    answers = [e for e in events if isinstance(e, ModelResponded)]
    assert [a.provider for a in answers] == ["openai", "cache"]
    assert answers[1].usage["cache_read_input_tokens"] == hits[0].input_tokens
    assert type(events[-2]) is CacheHit  # within the turn, before its ModelResponded


async def test_a_streamed_hit_is_a_complete_anthropic_stream(tmp_path):
    """A streaming request hit: message_start … message_stop, the text, cache reads."""
    async with running_gateway(tmp_path, env=ON) as gw:
        streamed = {**HELLO, "stream": True}
        first = await gw.post("/v1/messages", streamed, headers=SESSION)
        second = await gw.post("/v1/messages", streamed, headers=SESSION)
        from_json = (await gw.post("/v1/messages", HELLO, headers=SESSION)).json()
        events = await events_of(gw)
        assert len(gw.fake.requests) == 1  # the JSON request was a hit on the streamed one
    names = [name for name, _ in sse_events(second.text)]
    assert names == ["message_start", "content_block_start", "content_block_delta",
                     "content_block_stop", "message_delta", "message_stop"]
    parsed = dict(sse_events(second.text))
    assert parsed["message_start"]["message"]["usage"]["cache_read_input_tokens"] > 0
    assert parsed["message_start"]["message"]["usage"]["input_tokens"] == 0
    text = "".join(d["delta"]["text"] for n, d in sse_events(first.text)
                   if n == "content_block_delta")
    assert parsed["content_block_delta"]["delta"]["text"] == text
    assert parsed["message_delta"]["delta"]["stop_reason"] == "end_turn"
    assert from_json["content"][0]["text"] == text
    assert sum(isinstance(e, CacheHit) for e in events) == 2


async def test_cache_control_markers_and_metadata_do_not_change_the_key(tmp_path):
    """The same request with markers moved and other metadata is a hit."""
    marked = {**HELLO, "metadata": {"user_id": "u1"},
              "system": [{"type": "text", "text": "be brief",
                          "cache_control": {"type": "ephemeral"}}],
              "messages": [{"role": "user", "content": [
                  {"type": "text", "text": "hello", "cache_control": {"type": "ephemeral"}}]}]}
    plain = {**HELLO, "system": "be brief", "metadata": {"user_id": "u2"}}
    async with running_gateway(tmp_path, env=ON) as gw:
        await gw.post("/v1/messages", marked, headers=SESSION)
        await gw.post("/v1/messages", plain, headers=SESSION)
        await gw.post("/v1/messages", {**plain, "max_tokens": 65}, headers=SESSION)
        assert len(gw.fake.requests) == 2  # max_tokens decides the answer: a miss


async def test_an_entry_past_its_ttl_is_a_miss(tmp_path):
    """After PROMPT_CACHE_TTL_MS the upstream answers again, and the entry is evicted."""
    async with running_gateway(tmp_path, env={**ON, "PROMPT_CACHE_TTL_MS": "300"}) as gw:
        await gw.post("/v1/messages", HELLO, headers=SESSION)
        await trio.sleep(0.4)
        third = (await gw.post("/v1/messages", HELLO, headers=SESSION)).json()
        events = await events_of(gw)
        assert len(gw.fake.requests) == 2
    assert "cache_read_input_tokens" not in third["usage"]
    evicted = [e for e in events if isinstance(e, CacheEvicted)]
    assert [(e.reason, e.turn) for e in evicted] == [("ttl", 2)]
    assert sum(isinstance(e, CacheStored) for e in events) == 2  # stored afresh


async def test_the_least_recently_used_entry_goes_beyond_max_entries(tmp_path):
    """With room for two, a third answer evicts the least recently used one (CacheEvicted)."""
    async with running_gateway(tmp_path, env={**ON, "PROMPT_CACHE_MAX_ENTRIES": "2"}) as gw:
        for text in ("a", "b", "a", "c"):  # "a" used again, so "b" is the oldest
            await gw.post("/v1/messages", ask(text), headers=SESSION)
        assert len(gw.fake.requests) == 3
        await gw.post("/v1/messages", ask("a"), headers=SESSION)  # still there
        await gw.post("/v1/messages", ask("b"), headers=SESSION)  # gone
        events = await events_of(gw)
        assert len(gw.fake.requests) == 4
    stores = [(e.key, e.turn) for e in events if isinstance(e, CacheStored)]
    evicted = [e for e in events if isinstance(e, CacheEvicted)]
    assert [e.reason for e in evicted] == ["lru", "lru"]
    assert [turn for key, turn in stores if key == evicted[0].key] == [2, 6]  # "b"
    assert evicted[0].turn == 4  # by "c"


async def test_temperature_above_zero_is_cached_only_when_allowed(tmp_path):
    """temperature 0.7 reaches the upstream every time unless PROMPT_CACHE_NONDETERMINISTIC."""
    warm = ask("hi", temperature=0.7)
    async with running_gateway(tmp_path, env=ON) as gw:
        for _ in range(2):
            await gw.post("/v1/messages", warm, headers=SESSION)
        for _ in range(2):
            await gw.post("/v1/messages", ask("hi", temperature=0), headers=SESSION)
        events = await events_of(gw)
        assert len(gw.fake.requests) == 3
    assert sum(isinstance(e, CacheStored) for e in events) == 1  # the temperature-0 one
    async with running_gateway(tmp_path / "nd", env={
            **ON, "PROMPT_CACHE_NONDETERMINISTIC": "true"}) as gw:
        for _ in range(2):
            await gw.post("/v1/messages", warm, headers=SESSION)
        assert len(gw.fake.requests) == 1


async def test_answers_with_tool_use_are_never_stored(tmp_path):
    """A tool call answer is sent to the upstream again and never stored."""
    script = {"responses": [{"tool_calls": [{"name": "Bash", "arguments": {"command": "ls"}}],
                             "times": 2}]}
    tools = [{"name": "Bash", "description": "run", "input_schema": {"type": "object"}}]
    async with running_gateway(tmp_path, script, env=ON) as gw:
        for _ in range(2):
            body = (await gw.post("/v1/messages", {**HELLO, "tools": tools},
                                  headers=SESSION)).json()
            assert body["stop_reason"] == "tool_use"
        events = await events_of(gw)
        assert len(gw.fake.requests) == 2
    assert not any(isinstance(e, CacheStored | CacheHit) for e in events)


async def test_the_cache_is_warm_after_a_restart(tmp_path):
    """Entries stored before a restart answer after it; evicted ones stay evicted."""
    env = {**ON, "PROMPT_CACHE_MAX_ENTRIES": "2"}
    async with running_gateway(tmp_path, env=env) as gw:
        for text in ("a", "b", "c"):  # "a" evicted by "c"
            await gw.post("/v1/messages", ask(text), headers=SESSION)
    async with running_gateway(tmp_path, env=env) as gw:
        assert gw.system.orchestrator.cache.statistics().loaded == 2
        streamed = await gw.post("/v1/messages", ask("b", stream=True), headers=SESSION)
        assert "cache_read_input_tokens" in streamed.text
        await gw.post("/v1/messages", ask("c"), headers=SESSION)
        assert len(gw.fake.requests) == 0
        await gw.post("/v1/messages", ask("a"), headers=SESSION)
        assert len(gw.fake.requests) == 1


async def test_a_disabled_cache_stores_nothing(tmp_path):
    """PROMPT_CACHE_ENABLED=false: every request reaches the upstream, no cache events."""
    async with running_gateway(tmp_path, env={"PROMPT_CACHE_ENABLED": "false"}) as gw:
        for _ in range(2):
            await gw.post("/v1/messages", HELLO, headers=SESSION)
        events = await events_of(gw)
        assert len(gw.fake.requests) == 2
    assert not any(isinstance(e, CacheStored | CacheHit) for e in events)


def test_the_key_ignores_stream_metadata_and_markers_but_not_what_decides_the_answer():
    """Same key for markers, stream and metadata; another for provider, model, params, beta."""
    base = request_key(HELLO, "openai", "m")
    same = {**HELLO, "stream": True, "metadata": {"user_id": "x"},
            "cache_control": {"type": "ephemeral"},
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "hello", "cache_control": {"type": "ephemeral"}}]}]}
    assert request_key(same, "openai", "m") == base
    assert request_key({**HELLO, "model": "other-alias"}, "openai", "m") == base
    different = [request_key(HELLO, "databricks", "m"), request_key(HELLO, "openai", "n"),
                 request_key(HELLO, "openai", "m", "beta-1"),
                 request_key(HELLO, "openai", "m", scope="user:alice"),  # users never share
                 request_key(HELLO, "openai", "m", scope="user:bob"),
                 *(request_key({**HELLO, k: v}, "openai", "m") for k, v in (
                     ("temperature", 0), ("top_p", 0.5), ("top_k", 5), ("max_tokens", 65),
                     ("stop_sequences", ["x"]), ("tool_choice", {"type": "any"}),
                     ("thinking", {"type": "enabled", "budget_tokens": 1024}),
                     ("system", "s"), ("tools", [{"name": "t", "input_schema": {}}])))]
    assert base not in different
    assert len(set(different)) == len(different)


def _stored(key: str, text: str, expires_at: float) -> tuple[CacheStored, tuple]:
    message = {"id": "m", "type": "message", "role": "assistant", "model": "x",
               "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
               "stop_sequence": None, "usage": {"input_tokens": 7, "output_tokens": 1}}
    ref, data = make_blob(message)
    return CacheStored(turn=1, key=key, message=ref, input_tokens=7,
                       expires_at=expires_at), (ref, data)


def test_warming_reads_the_tail_of_a_large_log(tmp_path):
    """Behind 10,000 older events, the stores of the last TTL come back, in LRU order,
    without what was evicted or expired since."""
    recorder = SqliteRecorder(tmp_path / "lynkr.db")
    try:
        filler = [CacheEvicted(key=f"old-{i}", reason="lru") for i in range(10_000)]
        recorder.append("session-old", 0, filler)
        now = time.time()
        stored = [_stored(k, k, now + 300) for k in ("a", "b", "c", "d")]
        recorder.append("session-new", 0, [e for e, _ in stored],
                        blobs=[b for _, b in stored])
        recorder.append("session-new", 4, [CacheHit(turn=2, key="a", message=stored[0][0].message,
                                                    input_tokens=7, stored_at=now),
                                           CacheEvicted(key="b", reason="lru")])
        settings = PromptCacheSettings(max_entries=2)
        warm = PromptCache.warmed(settings, recorder)
        later = PromptCache.warmed(settings, recorder, clock=lambda: now + 400)
    finally:
        recorder.close()
    assert warm.statistics().loaded == 2
    assert list(warm._entries) == ["d", "a"]  # "c" was least recently used of a, c, d
    assert warm._entries["a"].message["content"] == [{"type": "text", "text": "a"}]
    assert later.statistics().loaded == 0  # past the TTL
