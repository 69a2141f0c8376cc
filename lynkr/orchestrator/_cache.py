"""The prompt cache: an LRU + TTL map from what decides an answer to a recorded answer.

**Key.** SHA-256 of the canonical JSON (keys sorted) of the request body without
`stream`, `metadata` and `model`, with every `cache_control` marker removed and string
`system`/`content` written as one text block, plus the provider, the backend model and
the `anthropic-beta` header. So everything the client sends that can change the
answer is in it (system, messages, tools, `tool_choice`, sampling parameters,
`thinking`, `output_config`, …), and two requests that differ only in how they ask
the upstream to cache, whether they stream, or their metadata share an entry.

**What is stored.** A completed answer without tool use (no `tool_use` or
`server_tool_use` block, `stop_reason` `end_turn`, `stop_sequence` or `max_tokens`) with
at least one visible block. A request that sets `temperature` above 0 is neither looked
up nor stored unless `PROMPT_CACHE_NONDETERMINISTIC` is on (README: an unset
temperature counts as no wish for variety).

**Usage.** A hit reports `input_tokens` 0 and the prompt's input tokens (input +
cache creation + cache read of the answer that was stored) as `cache_read_input_tokens`,
so the sum a client computes its context size from stays the prompt's size. A stored
non-streaming miss reports its uncached input as `cache_creation_input_tokens` (and
`input_tokens` 0); a streamed miss keeps the upstream's usage, since `message_start`
already went out and Claude Code keeps the first non-zero `input_tokens` of a stream.

**Events.** Within the turn, before its `ModelResponded`: `CacheHit` (the turn then
ends with `ModelResponded`, provider `cache`), `CacheStored`, and `CacheEvicted` for an
entry pushed out (`lru`) or found expired (`ttl`) by that turn. `PromptCache.warmed`
rebuilds the map at start from the log's events of the last TTL (found by a binary
search on position, not a scan of the whole log), answers loaded from blobs.

**Use** (as `Orchestrator.run_turn` does): `probe` before the turn begins (no I/O, so a
hit needs no upstream body); on a hit, begin the turn, `hit` (records `CacheHit`, gives
the client's message) and finish it with `ModelResponded`; on a miss, `missed` once the
turn began (records an expired entry's eviction, gives the key), and `store` the
completed answer before finishing (`rewrite_usage` only for a non-streamed one).
`cache_frames` turns a hit into its SSE stream.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from eventstore import BlobRef, Recorder, make_blob, thaw
from eventstore.events.session import CacheEvicted, CacheHit, CacheStored
from lynkr import _json
from lynkr.config import PromptCacheSettings
from lynkr.orchestrator._record import SessionRecorder, TurnTicket
from lynkr.orchestrator._route import Route
from lynkr.orchestrator._shape import usage_of, visible_blocks
from lynkr.providers import encode_message_stream

__all__ = ["CacheProbe", "CacheStatistics", "PromptCache", "cache_frames", "request_key"]

log = structlog.get_logger()

_NOT_IN_KEY = frozenset({"stream", "metadata", "model"})
_STORED_STOPS = frozenset({"end_turn", "stop_sequence", "max_tokens"})
_TOOL_BLOCKS = frozenset({"tool_use", "server_tool_use"})
_CLOCK_SLACK_S = 60.0  # warm-up reads this much further back (commit times may step back)
_WARM_PAGE = 1000


@dataclass(slots=True)
class _Entry:
    message: dict[str, Any]  # the answer as the client got it when it was stored
    ref: BlobRef
    input_tokens: int  # the prompt's, all of it
    stored_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class CacheProbe:
    """What `PromptCache.probe` found for a request (see there)."""

    key: str | None
    entry: _Entry | None
    expired: bool = False


@dataclass(frozen=True, slots=True)
class CacheStatistics:
    """What the cache holds and has done since start (warm-up counts as loaded)."""

    entries: int
    loaded: int
    hits: int
    stores: int
    evictions: int


def _strip_block(block: Any) -> Any:
    """`block` without `cache_control` (in a tool result's blocks too)."""
    if not isinstance(block, dict):
        return block
    if block.get("type") == "tool_result" and isinstance(block.get("content"), list):
        block = {**block, "content": [_strip_block(b) for b in block["content"]]}
    if "cache_control" in block:
        block = {k: v for k, v in block.items() if k != "cache_control"}
    return block


def _blocks(content: Any) -> Any:
    """Content as blocks without markers (a string is one text block). Copying every
    message costs ~0.3 ms for a 150 KB request; skipping unmarked ones cost more."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [_strip_block(b) for b in content]
    return content


def _message(message: Any) -> Any:
    if not isinstance(message, dict) or "content" not in message:
        return message
    return {**message, "content": _blocks(message["content"])}


def request_key(body: Mapping[str, Any], provider: str, backend_model: str,
                beta: str | None = None, scope: str = "") -> str:
    """The cache key of a request (see module docstring): SHA-256 hex.

    Raises:
        TypeError: the body holds something JSON cannot represent (never a parsed body).
    """
    canonical: dict[str, Any] = {k: v for k, v in body.items() if k not in _NOT_IN_KEY}
    canonical.pop("cache_control", None)  # automatic caching, at the top level
    if "system" in canonical:
        canonical["system"] = _blocks(canonical["system"])
    if isinstance(canonical.get("tools"), list):
        canonical["tools"] = _blocks(canonical["tools"])
    if isinstance(canonical.get("messages"), list):
        canonical["messages"] = [_message(m) for m in canonical["messages"]]
    # No body key starts with " "; `scope` keeps users apart (a team gateway's answers to
    # one user never serve another, nor tell them what another asked).
    canonical[" lynkr"] = [provider, backend_model, beta or ""] + ([scope] if scope else [])
    return hashlib.sha256(_json.dumps_sorted(canonical)).hexdigest()


def _prompt_tokens(usage: Mapping[str, int]) -> int:
    return sum(int(usage.get(name, 0) or 0) for name in (
        "input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))


async def cache_frames(message: Mapping[str, Any]) -> AsyncIterator[bytes]:
    """A cached answer as one Anthropic SSE stream (`message_start` … `message_stop`); the
    turn is committed before it is iterated, so nothing is held back."""
    body, stop = encode_message_stream(message)  # type: ignore[arg-type]
    yield body + stop


class PromptCache:
    """The map and the events that keep it (see module docstring). Use it from the trio
    thread: lookups and stores change the map without awaiting, then record."""

    def __init__(self, settings: PromptCacheSettings, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._ttl_s = settings.ttl_ms / 1000
        self._loaded = self._hits = self._stores = self._evictions = 0

    def statistics(self) -> CacheStatistics:
        """Entries held (expired ones not yet noticed included) and counters."""
        return CacheStatistics(len(self._entries), self._loaded, self._hits, self._stores,
                               self._evictions)

    def probe(self, body: Mapping[str, Any], route: Route,
              headers: Mapping[str, str], scope: str = "") -> CacheProbe:
        """What the cache holds for a request, before its turn begins (no I/O): its key
        (None when the cache is off or the request is not cached: `temperature` above 0
        without PROMPT_CACHE_NONDETERMINISTIC) and the live entry for it. `scope` keeps
        users apart: the caller's user with team auth on, "" otherwise. An expired entry
        is dropped here and its `CacheEvicted` recorded by `missed`."""
        if not self.settings.enabled:
            return CacheProbe(None, None)
        temperature = body.get("temperature")
        if (isinstance(temperature, int | float) and temperature > 0
                and not self.settings.nondeterministic):
            return CacheProbe(None, None)
        key = request_key(body, route.provider, route.backend_model,
                          headers.get("anthropic-beta"), scope)
        entry = self._entries.get(key)
        if entry is None:
            return CacheProbe(key, None)
        if entry.expires_at <= self.clock():
            del self._entries[key]
            self._evictions += 1
            return CacheProbe(key, None, expired=True)
        self._entries.move_to_end(key)
        return CacheProbe(key, entry)

    async def hit(self, turns: SessionRecorder, ticket: TurnTicket, probe: CacheProbe,
                  model: str) -> dict[str, Any]:
        """Record `CacheHit` in the open turn; the answer as this client gets it: a fresh
        id, `model` as it asked, and the hit's usage (module docstring)."""
        entry, key = probe.entry, probe.key
        if entry is None or key is None:
            raise ValueError("a cache hit needs a probe that found an entry")
        self._hits += 1
        await turns.record(ticket, CacheHit(turn=ticket.turn, key=key, message=entry.ref,
                                            input_tokens=entry.input_tokens,
                                            stored_at=entry.stored_at))
        usage = usage_of(entry.message)
        return {**entry.message, "id": "msg_" + secrets.token_hex(12), "model": model,
                "usage": {"input_tokens": 0, "cache_creation_input_tokens": 0,
                          "cache_read_input_tokens": entry.input_tokens,
                          "output_tokens": usage.get("output_tokens", 0)}}

    async def missed(self, turns: SessionRecorder, ticket: TurnTicket,
                     probe: CacheProbe) -> str | None:
        """A miss in an open turn: record `CacheEvicted` (`ttl`) if the probe dropped an
        expired entry. Returns the key to `store` the answer under."""
        if probe.expired and probe.key is not None:
            await turns.record(ticket, CacheEvicted(key=probe.key, reason="ttl"))
        return probe.key

    def storable(self, key: str | None, message: Mapping[str, Any]) -> bool:
        """Whether `message`, the answer to the request with `key`, may be stored."""
        if key is None or message.get("stop_reason") not in _STORED_STOPS:
            return False
        content = message.get("content")
        if not isinstance(content, list) or visible_blocks(content) == 0:
            return False
        return not any(isinstance(b, dict) and b.get("type") in _TOOL_BLOCKS for b in content)

    async def store(self, turns: SessionRecorder, ticket: TurnTicket, key: str | None,
                    message: dict[str, Any], *, rewrite_usage: bool) -> dict[str, Any]:
        """Store a completed answer if it is `storable`: record `CacheStored` (and
        `CacheEvicted` for what it pushes out) in the open turn.

        Returns:
            The message the client gets: with `rewrite_usage` (a non-streaming answer) and
            when stored, its uncached input reported as `cache_creation_input_tokens`;
            else `message` itself.
        """
        if key is None or not self.storable(key, message):
            return message
        usage = usage_of(message)
        prompt = _prompt_tokens(usage)
        if rewrite_usage:
            created = usage.get("input_tokens", 0) + usage.get("cache_creation_input_tokens", 0)
            message = {**message, "usage": {**message.get("usage", {}), "input_tokens": 0,
                                            "cache_creation_input_tokens": created}}
        ref, data = make_blob(message)
        now = self.clock()
        entry = _Entry(message, ref, prompt, now, now + self._ttl_s)
        evicted = self._put(key, entry)
        self._stores += 1
        events: list[Any] = [CacheStored(turn=ticket.turn, key=key, message=ref,
                                         input_tokens=prompt, expires_at=entry.expires_at)]
        events += [CacheEvicted(key=k, reason=reason) for k, reason in evicted]
        await turns.record(ticket, *events, blobs=[(ref, data)])
        return message

    def _put(self, key: str, entry: _Entry) -> list[tuple[str, str]]:
        """Insert `entry`; drop entries over the limit (expired first, then least recently
        used); return (key, reason) for each dropped."""
        self._entries[key] = entry
        self._entries.move_to_end(key)
        dropped: list[tuple[str, str]] = []
        now = self.clock()
        while len(self._entries) > self.settings.max_entries:
            expired = next((k for k, e in self._entries.items() if e.expires_at <= now), None)
            victim, reason = (expired, "ttl") if expired is not None else (
                next(iter(self._entries)), "lru")
            del self._entries[victim]
            dropped.append((victim, reason))
        self._evictions += len(dropped)
        return dropped

    @classmethod
    def warmed(cls, settings: PromptCacheSettings, recorder: Recorder, *,
               clock: Callable[[], float] = time.time) -> PromptCache:
        """A cache rebuilt from the log: the stores of the last TTL, minus what was evicted
        since, in least-recently-used order, answers loaded from blobs. Blocking (reads
        the database): run it in a thread.

        Only the log's tail is read: a binary search on position finds the first event
        recorded within the TTL (plus a minute of slack).
        """
        cache = cls(settings, clock=clock)
        if not settings.enabled:
            return cache
        started, now = time.perf_counter(), clock()
        found: OrderedDict[str, tuple[BlobRef, int, float, float]] = OrderedDict()
        read = 0
        for record in recorder.read_since(now - cache._ttl_s - _CLOCK_SLACK_S, _WARM_PAGE):
            read += 1
            match record.event:
                case CacheStored() as ev:
                    expires = min(ev.expires_at, record.recorded_at + cache._ttl_s)
                    found[ev.key] = (ev.message, ev.input_tokens, record.recorded_at, expires)
                    found.move_to_end(ev.key)
                case CacheHit() as ev if ev.key in found:
                    found.move_to_end(ev.key)
                case CacheEvicted() as ev:
                    found.pop(ev.key, None)
        live = [(k, v) for k, v in found.items() if v[3] > now][-settings.max_entries:]
        for key, (ref, tokens, stored_at, expires) in live:
            message = thaw(recorder.load_blob(ref))
            cache._entries[key] = _Entry(message, ref, tokens, stored_at, expires)
        cache._loaded = len(cache._entries)
        log.info("prompt_cache_warmed", entries=cache._loaded, events_read=read,
                 ms=round((time.perf_counter() - started) * 1000, 2))
        return cache
