"""Events of `session-<id>` streams: one Claude Code (or API client) conversation.

A turn is `TurnStarted` → `RouteChosen` → [`CacheHit` | `CacheEvicted`] →
(`LoopStepResponded` → (`PolicyDecided` → `ToolCallStarted` → `ToolCompleted` |
`ToolCallInterrupted`)*)* → [`CacheStored` → `CacheEvicted`*] → one of `ModelResponded` /
`UpstreamFailed` / `StreamAborted`; cache events are recorded while the turn is open.
`LoopStepResponded` is a model answer inside the agent loop that asked for server tools
(the client never sees it whole); the turn's `ModelResponded` carries what the client
saw. Large, repeated parts of a request (system blocks, tool list, messages) are
`BlobRef`s. A request refused by the loop guard is `SessionLoopStopped` and starts no
turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventstore._codec import BlobRef
from eventstore._registry import EVENTS, Event, Payload

__all__ = [
    "CacheEvicted",
    "CacheHit",
    "CacheStored",
    "LoopStepResponded",
    "ModelResponded",
    "PolicyDecided",
    "RouteChosen",
    "SessionLoopStopped",
    "SessionStarted",
    "StreamAborted",
    "ToolCallInterrupted",
    "ToolCallQueued",
    "ToolCallStarted",
    "ToolCompleted",
    "TurnStarted",
    "UpstreamFailed",
]


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class SessionStarted(Event):
    """The first event of every session stream."""

    session_id: str
    source: str  # where the id came from: "header", "metadata", "inferred", "generated", "cli"
    client: str | None = None  # User-Agent of the first request


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class TurnStarted(Event):
    """A request reached the gateway and was accepted for a backend.

    v2 adds `request_digest`: the SHA-256 of everything the client sent that decides
    the answer (model, system, tools, messages, other parameters), from the parts'
    blob digests — the loop guard counts repeats of it.
    """

    class_version = 2

    turn: int
    request_id: str
    model: str  # as the client asked
    stream: bool
    system: tuple[BlobRef, ...] = ()  # one blob per system block
    tools: BlobRef | None = None  # the whole tool list (it repeats verbatim)
    messages: tuple[BlobRef, ...] = ()  # one blob per message: history dedups
    params: dict[str, Any] | None = None  # the rest of the body (max_tokens, thinking, …)
    headers: dict[str, str] | None = None  # anthropic-version/-beta, user-agent; no secrets
    request_bytes: int = 0  # size of the body as received
    request_digest: str | None = None  # sha256 hex (v2; None in older events)


@EVENTS.upcaster("TurnStarted", from_version=1)
def _turn_started_v1_v2(payload: Payload) -> Payload:
    payload["request_digest"] = None
    return payload


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class RouteChosen(Event):
    """Which backend and model serve the turn, and why."""

    turn: int
    provider: str
    backend_model: str
    reason: str


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class ModelResponded(Event):
    """The turn's final answer, as the client was (or will be) told.

    v2 adds `answer_digest` (SHA-256 of the answer's content blocks), `visible_blocks`
    (content blocks with something in them: 0 is an empty answer) and `unknown_parts`
    (parts of the upstream answer Lynkr could not translate, counted by type). v3 adds
    `client_digest`: the SHA-256 of the exact bytes the client was sent (the JSON body,
    or the SSE frames one after another), which `lynkr replay --verify` recomputes.
    """

    class_version = 3

    turn: int
    message: BlobRef  # the final Anthropic message object
    stop_reason: str | None
    usage: dict[str, int]
    latency_ms: float
    first_byte_ms: float | None = None
    upstream: BlobRef | None = None  # raw upstream response (chunks or body) for replay
    provider: str | None = None
    answer_digest: str | None = None  # v2; None in older events
    visible_blocks: int | None = None  # v2; None (unknown) in older events
    unknown_parts: dict[str, int] | None = None  # v2
    client_digest: str | None = None  # v3: sha256 hex of the bytes sent; None before


@EVENTS.upcaster("ModelResponded", from_version=1)
def _model_responded_v1_v2(payload: Payload) -> Payload:
    payload.update(answer_digest=None, visible_blocks=None, unknown_parts=None)
    return payload


@EVENTS.upcaster("ModelResponded", from_version=2)
def _model_responded_v2_v3(payload: Payload) -> Payload:
    payload.update(client_digest=None)
    return payload


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class SessionLoopStopped(Event):
    """The loop guard refused a request: the session kept getting empty answers, or kept
    sending the same request and getting the same answer. No turn was started. Every
    request within the guard's window after it is refused too (each one an event); after
    the window the guard's counts start afresh."""

    request_id: str
    rule: str  # "empty_answers" or "repeated_request"
    count: int  # the empty answers in a row, or the repeats within the window
    turns: tuple[int, ...]  # the turns that made the loop
    reason: str  # the sentence the client was shown


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class UpstreamFailed(Event):
    """The backend answered with an error, or could not be reached."""

    turn: int
    status: int  # status the client got
    error_type: str  # Anthropic error type the client got
    message: str
    upstream_status: int | None = None
    attempts: int = 1
    provider: str | None = None


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class StreamAborted(Event):
    """A stream ended without a finish reason, was cut, malformed, or the client left."""

    turn: int
    reason: str
    partial: BlobRef | None = None  # what had been assembled when it broke
    upstream: BlobRef | None = None
    provider: str | None = None


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyDecided(Event):
    """A policy rule allowed or denied a tool call (v2 names the caller)."""

    class_version = 2

    tool: str
    policy: str  # e.g. "git", "fs", "web", "mcp"
    rule: str  # e.g. "git.push.allowed"
    decision: str  # "allow" | "deny"
    reason: str
    inputs_digest: str  # sha256 hex of the canonical tool input
    fields: dict[str, Any]  # the inputs that matter: path, remote, branch, host…
    config_hash: str  # sha256 hex of the policy configuration in force
    tool_call_id: str | None = None
    turn: int | None = None
    caller: str | None = None  # v2: "session", "cli:<user>", "admin:<key id>"; None before


@EVENTS.upcaster("PolicyDecided", from_version=1)
def _policy_decided_v1_v2(payload: Payload) -> Payload:
    payload.update(caller=None)
    return payload


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCompleted(Event):
    """A server tool ran (or failed); its result is a blob."""

    tool: str
    ok: bool
    result: BlobRef
    duration_ms: float
    tool_call_id: str | None = None
    turn: int | None = None


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class LoopStepResponded(Event):
    """One model answer inside the agent loop that asked for server tools. The loop ran
    them and called the model again; the client sees only this step's visible part
    (text, client tool calls) inside the turn's one message."""

    turn: int
    step: int  # 1 for the first model call of the turn
    message: BlobRef  # the whole Anthropic message of this step, server tool calls included
    stop_reason: str | None
    usage: dict[str, int]
    latency_ms: float
    first_byte_ms: float | None = None
    upstream: BlobRef | None = None  # raw upstream response for replay
    provider: str | None = None


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallStarted(Event):
    """A server tool's handler is about to run (after its policy decisions). A call
    started and neither completed nor interrupted was in flight when the process died."""

    tool: str
    inputs_digest: str  # sha256 hex of the canonical tool input
    effects: bool  # the tool may change things outside the log (files, git, a remote)
    tool_call_id: str | None = None
    turn: int | None = None
    caller: str | None = None  # "session", "cli:<user>", "admin:<key id>"


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallInterrupted(Event):
    """A started tool call that will never complete: the client left (the call was
    cancelled) or the gateway stopped while it ran (appended by recovery). It is never
    re-run blindly; the model is told, and whether its effects may have happened."""

    tool: str
    reason: str  # "client_disconnected", "gateway_restarted", "cancelled"
    effects_possible: bool  # the call may have changed things before it stopped
    tool_call_id: str | None = None
    turn: int | None = None


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class CacheHit(Event):
    """The prompt cache answered this turn without calling the upstream."""

    turn: int
    key: str  # sha256 hex of everything that decides the answer
    message: BlobRef  # the stored answer that was served
    input_tokens: int  # the prompt's input tokens, reported as cache reads
    stored_at: float  # epoch seconds the answer was stored


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class CacheStored(Event):
    """A tool-free answer was stored in the prompt cache (a later identical request within
    the TTL is a hit, also after a restart)."""

    turn: int
    key: str
    message: BlobRef  # the answer, as the client got it
    input_tokens: int
    expires_at: float  # epoch seconds


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class CacheEvicted(Event):
    """An entry left the prompt cache: LRU (over `PROMPT_CACHE_MAX_ENTRIES`) or TTL."""

    key: str
    reason: str  # "lru" or "ttl"
    turn: int | None = None


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallQueued(Event):
    """A started call of a user's tunnelled tool (`lynkr connect`) was queued for that
    user's connector, before it is sent: it is delivered when a connector of the user is
    (or comes back) within `timeout_s`, and its `ToolCompleted` follows."""

    tool: str
    user: str  # the connector's user: the calling session's principal
    timeout_s: float
    connector_id: str | None = None  # the connector it went to; None: none attached yet
    tool_call_id: str | None = None
    turn: int | None = None
