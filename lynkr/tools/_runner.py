"""`ToolRunner`: one tool call through validation, policy, the handler and the log.

Every call leaves events in its session stream: a `PolicyDecided` for each decision
(the tool's check, and any the handler meets while it runs) and a `ToolCompleted`
with the result as a blob. Failures the model should see come back as a
`ToolResult` with `ok=False`; a caller never gets a traceback for bad input.

Recording goes through a `SessionSink` ("something that records events for a
session"): the session actor in the server, or `RecorderSessionSink`, which appends
directly to the log with optimistic concurrency (the CLI's fallback).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import structlog
import trio

from actors import Sessions
from eventstore import BlobRef, ConcurrencyError, Event, Recorder, make_blob
from eventstore.events.session import SessionStarted, ToolCompleted
from lynkr.errors import InternalError, LynkrError, ToolError
from lynkr.tools._policy import Decision, PolicyEngine
from lynkr.tools._registry import ToolRegistry
from lynkr.tools._settings import PolicySettings
from lynkr.tools._spec import ToolSpec

__all__ = ["ActorSessionSink", "CallContext", "RecorderSessionSink", "SessionSink", "ToolResult",
           "ToolRunner"]

log = structlog.get_logger()
_APPEND_RETRIES = 5


class SessionSink(Protocol):
    """Something that records events in a session's stream, durably, in order."""

    async def record(
        self,
        session_id: str,
        events: Sequence[Event],
        *,
        blobs: Sequence[tuple[BlobRef, bytes]] = (),
        turn: int | None = None,
    ) -> None:
        """Append `events` (and the blobs they refer to) to ``session-<session_id>``."""


class RecorderSessionSink:
    """A `SessionSink` appending straight to the log (for processes without a session actor).

    A new stream starts with `SessionStarted(source=source)`; a concurrent writer
    is handled by re-reading the version and retrying.
    """

    def __init__(self, recorder: Recorder, *, source: str = "cli") -> None:
        self.recorder = recorder
        self.source = source

    async def record(
        self,
        session_id: str,
        events: Sequence[Event],
        *,
        blobs: Sequence[tuple[BlobRef, bytes]] = (),
        turn: int | None = None,
    ) -> None:
        """See `SessionSink.record` (`turn` is already on the events; not needed here)."""
        await trio.to_thread.run_sync(self._append, session_id, list(events), list(blobs))

    def _append(self, session_id: str, events: list[Event],
                blobs: list[tuple[BlobRef, bytes]]) -> None:
        stream = f"session-{session_id}"
        for attempt in range(_APPEND_RETRIES):
            version = self.recorder.stream_version(stream)
            batch = events if version else [
                SessionStarted(session_id=session_id, source=self.source), *events]
            try:
                self.recorder.append(stream, version, batch, blobs=blobs)
            except ConcurrencyError:
                if attempt == _APPEND_RETRIES - 1:
                    raise
                continue
            return


class ActorSessionSink:
    """A `SessionSink` recording through the session actors (`actors.Sessions.record`).

    The session actor records only within an open turn, so every call must carry one.
    """

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def record(
        self,
        session_id: str,
        events: Sequence[Event],
        *,
        blobs: Sequence[tuple[BlobRef, bytes]] = (),
        turn: int | None = None,
    ) -> None:
        """See `SessionSink.record`.

        Raises:
            InternalError: no turn was given (a bug in the caller).
        """
        if turn is None:
            raise InternalError("tool events go through the session actor only within a turn")
        await self.sessions.record(session_id, turn, *events, blobs=blobs)


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolResult:
    """What a tool call produced, as the caller (model or CLI) sees it."""

    tool: str
    ok: bool
    content: Any  # JSON-like result, or {"error": ...} when not ok
    error_type: str | None = None  # the ToolError class name when not ok
    decisions: tuple[Decision, ...] = ()

    def text(self) -> str:
        """The content as text: strings as they are, anything else as JSON."""
        if isinstance(self.content, str):
            return self.content
        return json.dumps(self.content, indent=2, ensure_ascii=False, default=str)

    def tool_result_block(self, tool_use_id: str) -> dict[str, Any]:
        """Anthropic's ``tool_result`` content block for this result."""
        return {"type": "tool_result", "tool_use_id": tool_use_id, "content": self.text(),
                "is_error": not self.ok}


@dataclass(slots=True, kw_only=True)
class CallContext:
    """The `ToolContext` of one call: identity, settings, the log, and `enforce`."""

    session_id: str | None
    settings: PolicySettings
    recorder: Recorder
    tool: str
    inputs: Mapping[str, Any]
    runner: ToolRunner
    tool_call_id: str | None = None
    turn: int | None = None
    decisions: list[Decision] = field(default_factory=list)

    @property
    def workspace_root(self) -> Path:
        """WORKSPACE_ROOT, resolved."""
        return self.settings.workspace_root

    @property
    def workspace_id(self) -> str:
        """Short id of the workspace."""
        return self.settings.workspace_id

    async def enforce(self, decision: Decision) -> None:
        """Record `decision`; raise `PolicyDeniedError` if it denies."""
        await self.runner.record_decision(self, decision)
        if not decision.allowed:
            raise decision.error()


class ToolRunner:
    """Runs tool calls from a registry under the policy settings, recording each one."""

    def __init__(self, registry: ToolRegistry, settings: PolicySettings, *,
                 sink: SessionSink, recorder: Recorder) -> None:
        self.registry = registry
        self.settings = settings
        self.engine = PolicyEngine(settings)
        self.sink = sink
        self.recorder = recorder

    async def call(
        self,
        name: str,
        inputs: Any,
        *,
        session_id: str,
        tool_call_id: str | None = None,
        turn: int | None = None,
        step: int = 1,
    ) -> ToolResult:
        """Validate, decide, run and record one call of tool `name`.

        Args:
            name: the tool's registered name.
            inputs: the tool input as sent (validated here).
            session_id: the session whose stream records the call.
            tool_call_id: the model's ``tool_use`` id, if any.
            turn: the turn number, if any.
            step: how many tool calls this turn has made, this one included.

        Returns:
            The result; ``ok=False`` for a refused, invalid or failed call.
        """
        ctx = CallContext(session_id=session_id, settings=self.settings,
                          recorder=self.recorder, tool=name,
                          inputs=inputs if isinstance(inputs, Mapping) else {},
                          runner=self, tool_call_id=tool_call_id, turn=turn)
        started = time.perf_counter()
        try:
            content = await self._run(ctx, name, inputs, step)
        except LynkrError as exc:
            result = ToolResult(tool=name, ok=False, content={"error": exc.message},
                                error_type=type(exc).__name__, decisions=tuple(ctx.decisions))
        except Exception:  # a bug in a tool must not take the caller down; it is logged
            log.exception("tool_crashed", tool=name, session_id=session_id)
            result = ToolResult(tool=name, ok=False,
                                content={"error": f"{name} failed unexpectedly"},
                                error_type="InternalError", decisions=tuple(ctx.decisions))
        else:
            result = ToolResult(tool=name, ok=True, content=content,
                                decisions=tuple(ctx.decisions))
        await self._record_completion(ctx, result, (time.perf_counter() - started) * 1000)
        return result

    async def _run(self, ctx: CallContext, name: str, inputs: Any, step: int) -> Any:
        try:
            spec = self.registry.get(name)
        except ToolError:
            await self.record_decision(ctx, Decision.deny("registry", "registry.tool_known",
                                            f"no tool named {name!r} is registered",
                                            tool_name=name))
            raise
        over = self.engine.check_steps(step)
        if over is not None:
            await ctx.enforce(over)
        valid = self.registry.validate(spec, inputs)
        await ctx.enforce(await self._check(spec, ctx, valid))
        return await spec.handler(ctx, valid)

    @staticmethod
    async def _check(spec: ToolSpec, ctx: CallContext, inputs: Mapping[str, Any]) -> Decision:
        if spec.check is None:
            return Decision.allow(spec.policy, f"{spec.policy}.default",
                                  "no rule restricts this tool")
        return await spec.check(ctx, inputs)

    async def record_decision(self, ctx: CallContext, decision: Decision) -> None:
        """Append the `PolicyDecided` event of `decision` to the call's session."""
        ctx.decisions.append(decision)
        event = self.engine.event(decision, tool=ctx.tool, inputs=ctx.inputs,
                                  tool_call_id=ctx.tool_call_id, turn=ctx.turn)
        log.info("policy_decided", tool=ctx.tool, rule=decision.rule,
                 decision=decision.verdict, session_id=ctx.session_id)
        if ctx.session_id is not None:
            await self.sink.record(ctx.session_id, [event], turn=ctx.turn)

    async def _record_completion(self, ctx: CallContext, result: ToolResult,
                                 duration_ms: float) -> None:
        if ctx.session_id is None:
            return
        ref, data = make_blob(_jsonable(result.content))
        event = ToolCompleted(tool=ctx.tool, ok=result.ok, result=ref,
                              duration_ms=round(duration_ms, 3),
                              tool_call_id=ctx.tool_call_id, turn=ctx.turn)
        await self.sink.record(ctx.session_id, [event], blobs=[(ref, data)], turn=ctx.turn)


def _jsonable(value: Any) -> Any:
    """`value` made CBOR-encodable the way JSON would see it."""
    return json.loads(json.dumps(value, default=str))
