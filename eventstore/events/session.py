"""Events of `session-<id>` streams: one Claude Code (or API client) conversation.

A turn is `TurnStarted` → `RouteChosen` → (`PolicyDecided` → `ToolCompleted`)* →
one of `ModelResponded` / `UpstreamFailed` / `StreamAborted`. Large, repeated parts
of a request (system blocks, tool list, messages) are `BlobRef`s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventstore._codec import BlobRef
from eventstore._registry import EVENTS, Event

__all__ = [
    "ModelResponded",
    "PolicyDecided",
    "RouteChosen",
    "SessionStarted",
    "StreamAborted",
    "ToolCompleted",
    "TurnStarted",
    "UpstreamFailed",
]


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class SessionStarted(Event):
    """The first event of every session stream."""

    session_id: str
    source: str  # where the id came from: "header", "metadata", "generated", "cli"
    client: str | None = None  # User-Agent of the first request


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class TurnStarted(Event):
    """A request reached the gateway and was accepted for a backend."""

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
    """The turn's final answer, as the client was (or will be) told."""

    turn: int
    message: BlobRef  # the final Anthropic message object
    stop_reason: str | None
    usage: dict[str, int]
    latency_ms: float
    first_byte_ms: float | None = None
    upstream: BlobRef | None = None  # raw upstream response (chunks or body) for replay
    provider: str | None = None


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
    """A policy rule allowed or denied a tool call."""

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
