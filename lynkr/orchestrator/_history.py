"""The upstream's history when the agent loop has run: hidden steps put back.

The client sees one assistant message per turn, without the server tool calls the loop
ran (`lynkr/orchestrator/_loop.py`). When it resends the conversation, the upstream must
still see a consistent history (every `tool_use` answered by its `tool_result`), and the
model is better off seeing what its tools returned. The session's events know the hidden
steps: each `LoopStepResponded` message and each server call's outcome
(`TurnState.steps`, `TurnState.tool_calls`). `LoopHistory.splice` rewrites a request's
messages:

- An assistant message that is a loop turn's answer (same `answer_digest` as the turn's
  `ModelResponded`) becomes that turn's steps:
  `assistant(step 1)`, `user(its server results)`, …, `assistant(last step)`. When the
  last step also asked for client tools, its server results go first in the next user
  message, before the client's own `tool_result`s. When the loop stopped at the step
  limit, the notice the client saw follows as one more assistant message.
- When the turn just before was cut by a gateway restart in the middle of the loop
  (`StreamAborted` "gateway_restarted") and this request ends with that turn's last
  message (the client asking again), its steps so far are appended, with an `is_error`
  result for each call that was interrupted, saying so and whether its effects may have
  happened. The call is never re-run by Lynkr; the model decides.

Anything that does not match is sent as the client sent it: that history is consistent
too, it only lacks the hidden steps.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from eventstore import BlobRef, make_blob, thaw
from eventstore.projections.session_state import SessionState, TurnState
from lynkr.orchestrator._shape import answer_digest
from lynkr.tools import ToolResult

__all__ = ["LoopHistory", "interrupted_text"]

LoadBlob = Callable[[BlobRef], Awaitable[Any]]
_BLOB_CACHE = 512  # loaded step messages and results kept (they are resent every turn)
_RESTARTED = "gateway_restarted"


def interrupted_text(tool: str, reason: str, effects_possible: bool) -> str:
    """What the model is told about a call that never completed."""
    why = ("the gateway stopped while it ran" if reason == _RESTARTED
           else "the request was cancelled while it ran")
    effects = (" It may have changed things before it stopped: check the current state "
               "before calling it again." if effects_possible
               else " It changes nothing outside Lynkr's log, so it is safe to call again.")
    return f"{tool} was interrupted ({why}) and did not complete; Lynkr did not re-run it." \
           + effects


class LoopHistory:
    """Splices a session's hidden loop steps into a request's messages (module doc)."""

    def __init__(self, load_blob: LoadBlob) -> None:
        self._load_blob = load_blob
        self._blobs: OrderedDict[bytes, Any] = OrderedDict()

    async def splice(self, messages: Sequence[Any], state: SessionState | None
                     ) -> list[Any] | None:
        """The messages the upstream gets, or None when nothing changes."""
        if state is None:
            return None
        answers = {t.answer_digest: t for t in state.turns
                   if t.steps and t.status == "responded" and t.answer_digest}
        resumed = _resumable(state, messages)
        if not answers and resumed is None:
            return None
        out: list[Any] = []
        carry: list[dict[str, Any]] = []
        changed = False
        for message in messages:
            if not isinstance(message, Mapping):
                out.append(message)
                continue
            role = message.get("role")
            if carry and role == "user":
                message = {**message, "content": [*carry, *_blocks(message.get("content"))]}
                carry = []
            turn = answers.get(answer_digest(message.get("content"))) \
                if role == "assistant" and answers else None
            if turn is None:
                out.append(message)
                continue
            steps, carry = await self._expand(turn, message)
            out += steps
            changed = True
        if carry:  # no user message followed: answer our calls so the history stays valid
            out.append({"role": "user", "content": carry})
        if resumed is not None:
            steps, _ = await self._expand(resumed, None)
            out += steps
            changed = True
        return out if changed else None

    async def _expand(self, turn: TurnState, shown: Mapping[str, Any] | None
                      ) -> tuple[list[Any], list[dict[str, Any]]]:
        """A turn's steps as messages, and the server results owed to the next user
        message (when the last step also asked for client tools)."""
        calls = {c.tool_call_id: c for c in turn.tool_calls if c.tool_call_id}
        out: list[Any] = []
        carry: list[dict[str, Any]] = []
        last = len(turn.steps) - 1
        for i, ref in enumerate(turn.steps):
            step = await self._load(ref)
            content = list(_blocks(step.get("content")) if isinstance(step, Mapping) else ())
            out.append({"role": "assistant", "content": content})
            uses = [b for b in content if isinstance(b, Mapping) and b.get("type") == "tool_use"]
            ours = [b for b in uses if b.get("id") in calls]
            if not ours:
                continue
            results = [await self._result(calls[b["id"]], str(b["id"])) for b in ours]
            if i == last and len(ours) < len(uses):
                carry = results
            else:
                out.append({"role": "user", "content": results})
        ended_on_tools = out and out[-1]["role"] == "user"
        if ended_on_tools and shown is not None:  # the step-limit notice the client saw
            notice = _blocks(shown.get("content"))[-1:]
            out.append({"role": "assistant", "content": list(notice)})
        return out, carry

    async def _result(self, call: Any, tool_use_id: str) -> dict[str, Any]:
        if call.status == "interrupted" or call.result is None:
            reason = getattr(call, "reason", None) or _RESTARTED
            text = interrupted_text(call.tool, reason, bool(call.effects_possible))
            return {"type": "tool_result", "tool_use_id": tool_use_id, "content": text,
                    "is_error": True}
        content = await self._load(call.result)
        return ToolResult(tool=call.tool, ok=bool(call.ok), content=content
                          ).tool_result_block(tool_use_id)

    async def _load(self, ref: BlobRef) -> Any:
        cached = self._blobs.get(ref.digest)
        if cached is not None:
            self._blobs.move_to_end(ref.digest)
            return cached
        value = thaw(await self._load_blob(ref))
        self._blobs[ref.digest] = value
        if len(self._blobs) > _BLOB_CACHE:
            self._blobs.popitem(last=False)
        return value


def _resumable(state: SessionState, messages: Sequence[Any]) -> TurnState | None:
    """The turn cut by a restart mid-loop that this request asks again, if any."""
    if not state.turns or not messages:
        return None
    turn = state.turns[-1]
    if turn.status != "aborted" or turn.error != _RESTARTED or not turn.steps:
        return None
    if turn.last_message is None:
        return None
    ref, _ = make_blob(messages[-1])
    return turn if ref.digest == turn.last_message.digest else None


def _blocks(content: object) -> list[Any]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(content) if isinstance(content, list | tuple) else []
