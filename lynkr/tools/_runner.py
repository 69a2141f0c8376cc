"""`ToolRunner`: one tool call through validation, policy, the handler and the log.

Every call leaves events in its session stream: a `PolicyDecided` for each decision
(the tool's check, and any the handler meets while it runs), a `ToolCallStarted` just
before the handler runs, and a `ToolCompleted` with the result as a blob — or a
`ToolCallInterrupted` when the task running the call is cancelled (subprocess tools
have their process group killed by `lynkr.workspace._proc`). Failures the model should
see come back as a `ToolResult` with `ok=False`: an input that breaks the schema (the
text names the field), a deny, a tool error, or an unexpected exception (its class and
message; the stack only in the server's log); a caller never gets a traceback. A result
over TOOL_RESULT_MAX_BYTES is cut, with a note saying so.

Recording goes through the one sink, `StoreSessionSink` (`lynkr.tools._sink`): within a
turn through the session actor, outside one (the CLI, the admin API) straight through
the event store. Tools that keep their own
streams (tasks, test runs) append through `ctx.store` and read through `ctx.recorder`.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
import trio

from actors import EventStore
from eventstore import Recorder, make_blob
from eventstore.events.session import (
    PolicyDecided,
    ToolCallInterrupted,
    ToolCallStarted,
    ToolCompleted,
)
from lynkr.errors import LynkrError, ToolError
from lynkr.tools._policy import Decision, PolicyEngine, inputs_digest
from lynkr.tools._registry import ToolRegistry
from lynkr.tools._settings import PolicySettings
from lynkr.tools._sink import StoreSessionSink
from lynkr.tools._spec import ToolSpec
from lynkr.tools._truncate import truncate_text

__all__ = ["CallContext", "ToolResult", "ToolRunner"]

log = structlog.get_logger()
RECORD_TIMEOUT = 10.0  # seconds a shielded append (a result, an interrupt) may take


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolResult:
    """What a tool call produced, as the caller (model or CLI) sees it.

    A result whose text is over TOOL_RESULT_MAX_BYTES has `content` cut to that size (a
    string ending in a note saying so) and `truncated_from` set to the full size.
    """

    tool: str
    ok: bool
    content: Any  # JSON-like result, or {"error": ...} when not ok
    error_type: str | None = None  # the error class name when not ok
    decisions: tuple[Decision, ...] = ()
    tool_call_id: str | None = None  # the model's id, or the one Lynkr gave the call
    truncated_from: int | None = None  # bytes of the full text, when it was cut

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
    store: EventStore  # appends (tasks, test runs)
    recorder: Recorder  # reads
    tool: str
    inputs: Mapping[str, Any]
    runner: ToolRunner
    tool_call_id: str | None = None
    turn: int | None = None
    caller: str = "session"  # "session", "cli:<os user>", "admin:<key id or 'local'>"
    decisions: list[Decision] = field(default_factory=list)
    started: ToolSpec | None = None  # set once ToolCallStarted is on its way to the log
    finished: bool = False  # set once the call's ToolCompleted is on its way

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
    """Runs tool calls from a registry under the policy settings, recording each one.

    A call's events, in order: `PolicyDecided` for each decision; once they all allow,
    `ToolCallStarted` (with the tool's `effects`); then the handler runs (recording
    any further decisions it meets); then `ToolCompleted` with the result — or, when
    the task running the call is cancelled while the handler runs (the client left,
    the loop was cancelled), `ToolCallInterrupted` instead, appended shielded, and the
    cancellation goes on. A call whose process died between the two is closed by
    `recover_interrupted_calls` at the next gateway start.
    """

    def __init__(self, registry: ToolRegistry, settings: PolicySettings, *,
                 store: EventStore, recorder: Recorder,
                 sink: StoreSessionSink | None = None) -> None:
        """A runner over `registry`'s tools under `settings`.

        Args:
            registry: the tools.
            settings: the policy settings in force.
            store: the append path of the log the calls are recorded in.
            recorder: the same log, for the tools' reads.
            sink: records the calls' session events; `StoreSessionSink(store)` (no
                session actors, source ``"cli"``) if not given.
        """
        self.registry = registry
        self.settings = settings
        self.engine = PolicyEngine(settings)
        self.store = store
        self.recorder = recorder
        self.sink = sink if sink is not None else StoreSessionSink(store)

    async def call(
        self,
        name: str,
        inputs: Any,
        *,
        session_id: str,
        tool_call_id: str | None = None,
        turn: int | None = None,
        step: int = 1,
        caller: str = "session",
        cancel_reason: str = "cancelled",
        spec: ToolSpec | None = None,
    ) -> ToolResult:
        """Validate, decide, run and record one call of tool `name`.

        Args:
            name: the tool's registered name.
            inputs: the tool input as sent (validated here).
            session_id: the session whose stream records the call.
            tool_call_id: the model's ``tool_use`` id; without one the call gets
                ``lynkr_<hex>``, so its events can be matched.
            turn: the turn number, if any.
            step: how many tool calls this turn has made, this one included.
            caller: who asks, named on every `PolicyDecided` and `ToolCallStarted`:
                ``"session"`` (the agent loop), ``"cli:<os user>"``, ``"admin:<key id>"``.
            cancel_reason: the `ToolCallInterrupted` reason if this task is cancelled
                while the tool runs (``"client_disconnected"`` when the task is the
                client's request).
            spec: the tool itself, when it is not in the registry (a user's tunnelled
                tools exist for that user's sessions only); `name` must be its name.

        Returns:
            The result; ``ok=False`` for a refused, invalid or failed call (the text says
            why: the invalid field, the deny and its setting, the error class and message).

        Raises:
            trio.Cancelled: the task was cancelled (the call is recorded as interrupted
                if its handler had started).
        """
        ctx = CallContext(session_id=session_id, settings=self.settings, store=self.store,
                          recorder=self.recorder, tool=name,
                          inputs=inputs if isinstance(inputs, Mapping) else {},
                          runner=self, tool_call_id=tool_call_id or _new_call_id(),
                          turn=turn, caller=caller)
        started = time.perf_counter()
        try:
            result = await self._outcome(ctx, name, inputs, step, spec)
            ctx.finished = True
            await self._record_completion(ctx, result, (time.perf_counter() - started) * 1000)
        finally:
            if ctx.started is not None and not ctx.finished:
                await self._record_interrupted(ctx, ctx.started, cancel_reason)
        return result

    async def _outcome(self, ctx: CallContext, name: str, inputs: Any, step: int,
                       spec: ToolSpec | None) -> ToolResult:
        """The call's result; a failure the caller should see is an ``ok=False`` result."""
        try:
            content = await self._run(ctx, name, inputs, step, spec)
        except LynkrError as exc:
            return self._result(ctx, ok=False, content={"error": exc.message},
                                error_type=type(exc).__name__)
        except Exception as exc:  # a bug in a tool must not take the caller down
            # The stack stays in the server's log; the caller gets the class and message.
            log.exception("tool_crashed", tool=name, session_id=ctx.session_id,
                          tool_call_id=ctx.tool_call_id)
            return self._result(ctx, ok=False, content={
                "error": f"{name} failed unexpectedly: {type(exc).__name__}: {exc}"},
                error_type=type(exc).__name__)
        return self._result(ctx, ok=True, content=content)

    def _result(self, ctx: CallContext, *, ok: bool, content: Any,
                error_type: str | None = None) -> ToolResult:
        result = ToolResult(tool=ctx.tool, ok=ok, content=content, error_type=error_type,
                            decisions=tuple(ctx.decisions), tool_call_id=ctx.tool_call_id)
        return _truncated(result, self.settings.result_max_bytes)

    async def _run(self, ctx: CallContext, name: str, inputs: Any, step: int,
                   spec: ToolSpec | None) -> Any:
        try:
            spec = spec if spec is not None and spec.name == name else self.registry.get(name)
        except ToolError:
            await self.record_decision(ctx, Decision.deny("registry", "registry.tool_known",
                                            f"no tool named {name!r} is registered",
                                            tool_name=name))
            raise
        over = self.engine.check_steps(step)
        if over is not None:
            await ctx.enforce(over)
        valid = self.registry.validate(spec, inputs)
        decision = await self._check(spec, ctx, valid)
        if not decision.allowed:
            await ctx.enforce(decision)  # records the deny and raises
        await self._record_started(ctx, spec, decision)
        return await spec.handler(ctx, valid)

    @staticmethod
    async def _check(spec: ToolSpec, ctx: CallContext, inputs: Mapping[str, Any]) -> Decision:
        if spec.check is None:
            return Decision.allow(spec.policy, f"{spec.policy}.default",
                                  "no rule restricts this tool")
        return await spec.check(ctx, inputs)

    async def record_decision(self, ctx: CallContext, decision: Decision) -> None:
        """Append the `PolicyDecided` event of `decision` to the call's session."""
        event = self._decided(ctx, decision)
        if ctx.session_id is not None:
            await self.sink.record(ctx.session_id, [event], turn=ctx.turn)

    def _decided(self, ctx: CallContext, decision: Decision) -> PolicyDecided:
        ctx.decisions.append(decision)
        log.info("policy_decided", tool=ctx.tool, rule=decision.rule,
                 decision=decision.verdict, session_id=ctx.session_id, caller=ctx.caller)
        return self.engine.event(decision, tool=ctx.tool, inputs=ctx.inputs,
                                 tool_call_id=ctx.tool_call_id, turn=ctx.turn,
                                 caller=ctx.caller)

    async def _record_started(self, ctx: CallContext, spec: ToolSpec,
                              allowed: Decision) -> None:
        """The tool's allow and `ToolCallStarted`, in one append (one commit per call saved)."""
        decided = self._decided(ctx, allowed)
        # Marked before the append: if this task is cancelled while the append is in
        # flight, the event may still commit, and an interrupt with no start is harmless
        # where a start with no end would stay open until the next gateway start.
        ctx.started = spec
        if ctx.session_id is None:
            return
        event = ToolCallStarted(tool=ctx.tool, inputs_digest=inputs_digest(ctx.inputs),
                                effects=spec.effects, tool_call_id=ctx.tool_call_id,
                                turn=ctx.turn, caller=ctx.caller)
        await self.sink.record(ctx.session_id, [decided, event], turn=ctx.turn)

    async def _record_completion(self, ctx: CallContext, result: ToolResult,
                                 duration_ms: float) -> None:
        if ctx.session_id is None:
            return
        # The blob is what the caller got (truncated when over the limit), so a history
        # rebuilt from the log shows the model exactly what it saw.
        ref, data = make_blob(_jsonable(result.content))
        event = ToolCompleted(tool=ctx.tool, ok=result.ok, result=ref,
                              duration_ms=round(duration_ms, 3),
                              tool_call_id=ctx.tool_call_id, turn=ctx.turn)
        # Shielded: the handler has finished, so "completed" is the truth even if the
        # caller is being cancelled now (that lands at its next await). A failure raises.
        with trio.move_on_after(RECORD_TIMEOUT) as scope:
            scope.shield = True
            await self.sink.record(ctx.session_id, [event], blobs=[(ref, data)], turn=ctx.turn)
        if scope.cancelled_caught:
            log.error("tool_completion_not_recorded", tool=ctx.tool, session_id=ctx.session_id,
                      tool_call_id=ctx.tool_call_id, timeout_s=RECORD_TIMEOUT)

    async def _record_interrupted(self, ctx: CallContext, spec: ToolSpec, reason: str) -> None:
        """Append `ToolCallInterrupted`, shielded for at most `RECORD_TIMEOUT` seconds.

        A failure is logged, not raised: a cancellation is on its way to the caller.
        """
        log.warning("tool_call_interrupted", tool=ctx.tool, session_id=ctx.session_id,
                    tool_call_id=ctx.tool_call_id, reason=reason, effects=spec.effects)
        if ctx.session_id is None:
            return
        event = ToolCallInterrupted(tool=ctx.tool, reason=reason, effects_possible=spec.effects,
                                    tool_call_id=ctx.tool_call_id, turn=ctx.turn)
        with trio.move_on_after(RECORD_TIMEOUT) as scope:
            scope.shield = True
            try:
                await self.sink.record(ctx.session_id, [event], turn=ctx.turn)
            except Exception:  # shielded: no Cancelled to swallow (see docstring)
                log.exception("tool_interrupt_not_recorded", tool=ctx.tool,
                              session_id=ctx.session_id, tool_call_id=ctx.tool_call_id)
        if scope.cancelled_caught:
            log.error("tool_interrupt_not_recorded", tool=ctx.tool, session_id=ctx.session_id,
                      tool_call_id=ctx.tool_call_id, timeout_s=RECORD_TIMEOUT)


def _truncated(result: ToolResult, max_bytes: int) -> ToolResult:
    """`result` with its text cut to `max_bytes` (see `truncate_text`), if over."""
    cut = truncate_text(result.text(), max_bytes)
    if cut is None:
        return result
    return dataclasses.replace(result, content=cut[0], truncated_from=cut[1])


def _new_call_id() -> str:
    return f"lynkr_{uuid.uuid4().hex[:24]}"


def _jsonable(value: Any) -> Any:
    """`value` made CBOR-encodable the way JSON would see it."""
    return json.loads(json.dumps(value, default=str))
