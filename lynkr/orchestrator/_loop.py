"""The agent loop: server tools run inside one `/v1/messages` turn.

With `LYNKR_SERVER_TOOLS` on, the upstream is offered the enabled server tools after the
client's (`_server_tools.py`) and the client's history gets back the steps it never saw
(`_history.py`). A model answer that asks for server tools is one step of the loop:

1. the step's message is recorded (`LoopStepResponded`);
2. each server call goes through the `ToolRunner` (policy decision, `ToolCallStarted`,
   the handler, `ToolCompleted`; a deny or a failure becomes an `is_error` result the
   model can act on), concurrently when every call of the step is read-only, else one
   after the other in the model's order;
3. the model is called again with the step and its results appended.

The loop ends when an answer asks for no server tool. If it also asks for client tools
(Claude Code's Bash, Read…), they go to the client untouched with `stop_reason`
`tool_use`, and that step's server calls have run: their results wait in the log and go
to the upstream in the client's next request (`_history.py`). When the turn has made
`POLICY_MAX_STEPS` server calls, the next call is denied by the policy engine
(`PolicyDecided` naming POLICY_MAX_STEPS) and the loop ends with a text saying so,
`stop_reason` `end_turn`.

The client sees one message: one `message_start`, every step's text (and other blocks
but server `tool_use`s) as it streams, one `message_delta` with the usage summed over
the steps, and `message_stop` only after `ModelResponded` (the visible message) is
committed. The client leaving cancels the loop: a running tool is cancelled (its process
group killed) and recorded as interrupted by the runner; the turn ends `StreamAborted`.

While a streaming turn's server tools run, the client is sent an Anthropic `ping` event
every `LOOP_PING_INTERVAL_S`, so an idle-read timeout (a proxy's, a client's) does not
give up on a long tool; clients ignore pings. Pings depend on timing, so they are not in
`ModelResponded.client_digest`: `lynkr replay --verify` proves the other bytes.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import structlog
import trio

from eventstore import make_blob
from eventstore.events.session import LoopStepResponded
from lynkr.errors import LynkrError
from lynkr.orchestrator._call import (
    CallStats,
    OpenedStream,
    ProviderHandle,
    fetch_body,
    map_httpx_errors,
    open_stream,
)
from lynkr.orchestrator._history import LoopHistory
from lynkr.orchestrator._loop_frames import LoopFrames
from lynkr.orchestrator._loop_state import LoopPlan, LoopTurn, cancelled, step_limit_text
from lynkr.orchestrator._record import SessionRecorder, TurnTicket
from lynkr.orchestrator._server_tools import ServerTools
from lynkr.orchestrator._shape import error_frame, responded, usage_of
from lynkr.providers import MESSAGE_STOP_FRAME, UnknownParts

if TYPE_CHECKING:
    from lynkr.orchestrator._turn import Orchestrator, TurnInfo
    from lynkr.tools import ToolResult, ToolRunner

__all__ = ["AgentLoop", "LoopPlan", "step_limit_text"]

log = structlog.get_logger()

LOOP_PING_INTERVAL_S = 10.0  # well under common idle-read timeouts (30-60 s)
PING_FRAME = b'event: ping\ndata: {"type": "ping"}\n\n'


class _StepRun:
    """`_after_step` (the step's tool calls) as a task of the relay's nursery, so the
    relay's generator can ping the client meanwhile: a generator cannot yield from a
    child task. The step's failure is handed back to the relay ungrouped."""

    def __init__(self) -> None:
        self.done = trio.Event()
        self._end: str | None = None
        self._error: Exception | None = None

    async def run(self, after_step: Callable[[], Awaitable[str | None]]) -> None:
        """Run the step; `done` is set once it has an end or a failure."""
        try:
            self._end = await after_step()
        except Exception as exc:  # noqa: BLE001 - re-raised by `end()`; Cancelled is not an Exception
            self._error = exc
        self.done.set()

    def end(self) -> str | None:
        """The step's `_after_step` answer, or its failure raised.

        Raises:
            Exception: what `_after_step` raised.
        """
        if self._error is not None:
            raise self._error
        return self._end

class AgentLoop:
    """Runs turns whose model may call server tools (see module docstring)."""

    def __init__(self, tools: ServerTools, runner: ToolRunner, history: LoopHistory,
                 turns: SessionRecorder) -> None:
        self.tools = tools
        self.runner = runner
        self.history = history
        self.turns = turns

    @property
    def enabled(self) -> bool:
        """True when `LYNKR_SERVER_TOOLS` offers any tool."""
        return self.tools.enabled

    async def plan(self, body: Mapping[str, Any], headers: Mapping[str, str],
                   session_id: str, user: str | None = None) -> LoopPlan:
        """The upstream body for a request: tools offered (`user`'s own tunnelled tools
        too), hidden steps spliced back."""
        offer = self.tools.offer(body.get("tools"), session_id, user)
        planned = dict(body)
        if offer.tools:
            planned["tools"] = offer.tools
        if offer.server:
            state = await self.turns.sessions.state(session_id)
            messages = await self.history.splice(body.get("messages") or (), state)
            if messages is not None:
                planned["messages"] = messages
        return LoopPlan(planned, offer, headers)

    # --- one step ---------------------------------------------------------------------

    def _server_uses(self, turn: LoopTurn, message: Mapping[str, Any]
                     ) -> tuple[list[Mapping[str, Any]], int]:
        """The step's server `tool_use` blocks, and how many client ones it has."""
        ours, theirs = [], 0
        for block in message.get("content") or ():
            if isinstance(block, Mapping) and block.get("type") == "tool_use":
                if block.get("name") in turn.plan.server:
                    ours.append(block)
                else:
                    theirs += 1
        return ours, theirs

    async def _record_step(self, turn: LoopTurn, message: Mapping[str, Any], raw: bytes,
                           latency_ms: float) -> None:
        ref, data = make_blob(dict(message))
        raw_ref, raw_data = make_blob(raw)
        event = LoopStepResponded(
            turn=turn.ticket.turn, step=turn.steps, message=ref,
            stop_reason=message.get("stop_reason"), usage=usage_of(message),
            latency_ms=round(latency_ms, 3), upstream=raw_ref, provider=turn.handle.name)
        await self.turns.record(turn.ticket, event, blobs=[(ref, data), (raw_ref, raw_data)])

    async def _run_calls(self, turn: LoopTurn, uses: Sequence[Mapping[str, Any]]
                         ) -> tuple[list[dict[str, Any]], bool]:
        """Run one step's server calls; their `tool_result` blocks, and whether the step
        limit stopped the loop."""
        numbered = []
        for use in uses:
            turn.calls += 1
            numbered.append((turn.calls, use))
        results: dict[int, ToolResult] = {}

        async def run(step: int, use: Mapping[str, Any]) -> None:
            results[step] = await self.runner.call(
                str(use.get("name")), use.get("input"), session_id=turn.ticket.session.session_id,
                tool_call_id=str(use.get("id")), turn=turn.ticket.turn, step=step,
                cancel_reason="client_disconnected",  # a turn is cancelled when it leaves
                spec=turn.plan.server.get(str(use.get("name"))))

        specs = turn.plan.server
        if len(numbered) > 1 and all(specs[str(u.get("name"))].read_only for _, u in numbered):
            async with trio.open_nursery() as nursery:
                for step, use in numbered:
                    nursery.start_soon(run, step, use)
        else:
            for step, use in numbered:
                await run(step, use)
        blocks = [results[step].tool_result_block(str(use.get("id"))) for step, use in numbered]
        limited = turn.calls > self.runner.settings.max_steps
        return blocks, limited

    # --- JSON -------------------------------------------------------------------------

    async def complete(self, orchestrator: Orchestrator, plan: LoopPlan, ticket: TurnTicket,
                       handle: ProviderHandle, info: TurnInfo,
                       request_body: Mapping[str, Any]) -> dict[str, Any]:
        """A non-streaming turn under the loop: the client's one message."""
        turn = LoopTurn(plan, ticket, handle, CallStats())
        info.upstream = turn.stats  # its span: first model call to last answer, tools included
        raw = b""
        unknown = UnknownParts()
        while True:
            turn.steps += 1
            step_started = time.perf_counter()
            body = turn.body()
            upstream = handle.adapter.build(body, info.backend_model or "", turn.plan.headers)
            async with orchestrator.ending_failures(ticket, handle, turn.stats, info):
                raw = await fetch_body(handle, upstream, orchestrator.settings.resilience,
                                       turn.stats)
                message = handle.adapter.parse(raw, request_body, unknown)
            try:
                end = await self._after_step(turn, message, raw, step_started)
            except BaseException as exc:  # the client left while a tool ran (the runner
                if not cancelled(exc):   # recorded the call as interrupted)
                    raise
                info.outcome = "client_disconnected"
                await orchestrator.abort_shielded(ticket, handle.name, "client_disconnected",
                                                  None, raw)
                raise
            if end is not None:
                break
        final = await self._cached(orchestrator, turn, info,
                                   self._visible_message(turn, message, end), end, stream=False)
        event, blobs = responded(ticket.turn, final, raw, provider=handle.name,
                                 latency_ms=(time.perf_counter() - turn.stats.started) * 1000,
                                 first_byte_ms=turn.stats.first_byte_ms, unknown=unknown.counts)
        await orchestrator.turns.finish(ticket, event, blobs)
        info.attempts, info.usage, info.outcome = turn.stats.attempts, dict(turn.usage), "ok"
        return final

    async def _after_step(self, turn: LoopTurn, message: Mapping[str, Any], raw: bytes,
                          started: float) -> str | None:
        """Decide after one model answer: None to call the model again, else how the
        turn ends ("answer", "client_tools" or "limit")."""
        if turn.first is None:
            turn.first = message
        turn.add_usage(message)
        content = list(message.get("content") or ())
        ours, theirs = self._server_uses(turn, message)
        hidden = {id(b) for b in ours}
        turn.visible += [b for b in content if id(b) not in hidden]
        if not ours:
            if turn.steps > 1:  # the loop ran: keep the last step whole for the history
                await self._record_step(turn, message, raw,
                                        (time.perf_counter() - started) * 1000)
            return "answer"
        await self._record_step(turn, message, raw, (time.perf_counter() - started) * 1000)
        results, limited = await self._run_calls(turn, ours)
        if limited:
            return "limit"
        if theirs:
            return "client_tools"
        turn.extra += [{"role": "assistant", "content": content},
                       {"role": "user", "content": results}]
        return None

    @staticmethod
    async def _cached(orchestrator: Orchestrator, turn: LoopTurn, info: TurnInfo,
                      final: dict[str, Any], end: str, *, stream: bool) -> dict[str, Any]:
        """Store a turn the model answered at once (no server step ran: an answer that
        followed tool calls depends on what they did) in the prompt cache; the message as
        the client gets it (a JSON miss reports its prompt as cache creation)."""
        cache, key = orchestrator.cache, info.cache_key
        if cache is None or key is None or end != "answer" or turn.steps != 1:
            return final
        return await cache.store(orchestrator.turns, turn.ticket, key, final,
                                 rewrite_usage=not stream)

    def _visible_message(self, turn: LoopTurn, last: Mapping[str, Any], end: str
                         ) -> dict[str, Any]:
        first = turn.first or last
        content = list(turn.visible)
        stop_reason, stop_sequence = last.get("stop_reason"), last.get("stop_sequence")
        if end == "limit":
            content.append({"type": "text",
                            "text": step_limit_text(self.runner.settings.max_steps)})
            stop_reason, stop_sequence = "end_turn", None
        elif end == "client_tools":
            stop_reason, stop_sequence = "tool_use", None
        return {"id": first.get("id"), "type": "message", "role": "assistant",
                "model": first.get("model"), "content": content, "stop_reason": stop_reason,
                "stop_sequence": stop_sequence, "usage": dict(turn.usage)}

    # --- streaming --------------------------------------------------------------------

    async def open(self, orchestrator: Orchestrator, plan: LoopPlan, ticket: TurnTicket,
                   handle: ProviderHandle, info: TurnInfo,
                   request_body: Mapping[str, Any]) -> AsyncIterator[bytes]:
        """A streaming turn under the loop: the first step is opened here (a failure
        before any byte is the HTTP error), the rest runs as the client reads."""
        turn = LoopTurn(plan, ticket, handle, CallStats())
        info.upstream = turn.stats  # its span: first model call to last answer, tools included
        turn.steps = 1
        upstream = handle.adapter.build(turn.body(), info.backend_model or "",
                                             turn.plan.headers)
        async with orchestrator.ending_failures(ticket, handle, turn.stats, info):
            opened = await open_stream(handle, upstream, orchestrator.settings.resilience,
                                       turn.stats, request_body)
        info.attempts = turn.stats.attempts
        return self._relay(orchestrator, turn, opened, info, request_body)

    async def _relay(self, orchestrator: Orchestrator, turn: LoopTurn, opened: OpenedStream,
                     info: TurnInfo, request_body: Mapping[str, Any]) -> AsyncIterator[bytes]:
        frames = LoopFrames(turn.plan.server)
        ticket, handle = turn.ticket, turn.handle
        settled = False
        raw = b""
        sent = hashlib.sha256()  # replay --verify: every byte the client is sent
        current: OpenedStream | None = opened
        try:
            while current is not None:
                started = time.perf_counter()
                relay = current.relay
                out, error = frames.feed(current.first), None
                if out:
                    sent.update(out)
                    yield out
                try:
                    with map_httpx_errors(handle.name):
                        async for chunk in current.chunks:
                            out = frames.feed(relay.feed(chunk))
                            if out:
                                sent.update(out)
                                yield out
                            if relay.done:
                                break
                        else:
                            out = frames.feed(relay.end())
                            if out:
                                sent.update(out)
                                yield out
                except LynkrError as exc:
                    error = exc
                with trio.CancelScope(shield=True):
                    await current.aclose()
                current = None
                outcome = relay.outcome
                raw = relay.raw
                orchestrator.log_unknown(ticket, handle.name, relay.unknown)
                if error is not None or outcome is None or not outcome.complete:
                    reason = (f"{error.error_type}: {error.message}" if error is not None else
                              f"{outcome.error_type}: {outcome.error_message}" if outcome
                              else "stream failed")
                    await orchestrator.abort(ticket, handle.name, reason, raw)
                    settled = True
                    info.outcome = "stream_aborted"
                    if error is not None:
                        yield error_frame(error)
                    return
                message = dict(outcome.message or {})
                step = _StepRun()
                # Yielding inside a nursery is safe: the consumer (`_FrameBatch.pull`)
                # asks for the next frame in the same task, with no checkpoint between.
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(step.run, functools.partial(
                        self._after_step, turn, message, raw, started))
                    while not step.done.is_set():
                        with trio.move_on_after(LOOP_PING_INTERVAL_S):
                            await step.done.wait()
                        if not step.done.is_set():
                            yield PING_FRAME  # timing, not content: not in `sent`
                end = step.end()
                if end is None:
                    turn.steps += 1
                    frames.next_step()
                    upstream = handle.adapter.build(turn.body(), info.backend_model or "",
                                             turn.plan.headers)
                    try:
                        current = await open_stream(handle, upstream,
                                                    orchestrator.settings.resilience,
                                                    turn.stats, request_body)
                    except LynkrError as exc:
                        await orchestrator.abort(ticket, handle.name,
                                                 f"{exc.error_type}: {exc.message}", b"")
                        settled = True
                        info.outcome = "stream_aborted"
                        yield error_frame(exc)
                        return
                    continue
                final = self._visible_message(turn, message, end)
                tail = frames.text_block(final["content"][-1]["text"]) if end == "limit" else b""
                closing = frames.final(final["stop_reason"], final["stop_sequence"], turn.usage)
                sent.update(tail + closing + MESSAGE_STOP_FRAME)  # replay --verify
                event, blobs = responded(
                    ticket.turn, final, raw, provider=handle.name,
                    latency_ms=(time.perf_counter() - turn.stats.started) * 1000,
                    first_byte_ms=turn.stats.first_byte_ms, unknown=dict(relay.unknown.counts),
                    client_digest=sent.hexdigest())
                if tail:
                    yield tail
                await self._cached(orchestrator, turn, info, final, end, stream=True)
                await orchestrator.turns.finish(ticket, event, blobs)
                settled = True
                info.usage, info.outcome = dict(turn.usage), "ok"
                yield closing
                yield MESSAGE_STOP_FRAME
                return
        finally:
            if current is not None:
                with trio.CancelScope(shield=True):
                    await current.aclose()
            if not settled:
                info.outcome = "client_disconnected"
                await orchestrator.abort_shielded(ticket, handle.name, "client_disconnected",
                                                  None, raw)
