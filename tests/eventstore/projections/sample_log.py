"""A small but complete session log for projection tests (shared helper, not a test)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eventstore import Event, EventRegistry, Metadata, Recorder, SqliteRecorder, make_blob
from eventstore.events.session import (
    ModelResponded,
    PolicyDecided,
    RouteChosen,
    SessionStarted,
    StreamAborted,
    TurnStarted,
    UpstreamFailed,
)
from eventstore.events.system import ActorCrashed
from eventstore.projections import ProjectionStore, all_projections
from eventstore.projections.transcript import transcript_rows

STRAY = EventRegistry()  # a registry of its own: the default one does not know its types


@STRAY.register
@dataclass(frozen=True, slots=True, kw_only=True)
class StrayNoted(Event):
    """An event type only `STRAY` knows: a log holding one cannot be read by default."""

    note: str


def write_stray_log(path: Path) -> None:
    """A log at `path` whose only event is of a type the default registry does not know."""
    stray = SqliteRecorder(path, registry=STRAY)
    try:
        stray.append("session-x", 0, [StrayNoted(note="?")])
    finally:
        stray.close()


def start_turn(recorder: Recorder, session: str, turn: int, text: str, key: str | None) -> None:
    """Append a TurnStarted whose messages end with a user `text` and a tool result."""
    stream = f"session-{session}"
    system = make_blob({"type": "text", "text": "You are Claude Code."})
    msgs = [make_blob({"role": "user", "content": text}),
            make_blob({"role": "assistant", "content": [{"type": "text", "text": "ok"}]}),
            make_blob({"role": "user", "content": [{"type": "tool_result", "content": "x"}]})]
    event = TurnStarted(turn=turn, request_id=f"req-{session}-{turn}", model="claude-sonnet",
                        stream=True, system=(system[0],), messages=tuple(m[0] for m in msgs))
    recorder.append(stream, recorder.stream_version(stream), [event],
                    metadata=Metadata(request_id=f"req-{session}-{turn}", key_id=key),
                    blobs=[system, *msgs])


def respond(recorder: Recorder, session: str, turn: int, text: str, tools: list[str]) -> None:
    """Append a RouteChosen and a ModelResponded with `text` and tool_use blocks."""
    stream = f"session-{session}"
    content = [{"type": "text", "text": text}]
    content += [{"type": "tool_use", "id": f"t{i}", "name": n, "input": {}}
                for i, n in enumerate(tools)]
    message = make_blob({"role": "assistant", "content": content})
    events = [
        RouteChosen(turn=turn, provider="openai", backend_model="gpt-backend", reason="default"),
        ModelResponded(turn=turn, message=message[0], stop_reason="tool_use" if tools else
                       "end_turn", usage={"input_tokens": 100 * turn, "output_tokens": 7},
                       latency_ms=250.0),
    ]
    recorder.append(stream, recorder.stream_version(stream), events, blobs=[message])


def write_sample_log(recorder: Recorder) -> None:
    """Two sessions: answered, failed and aborted turns, plus a system event."""
    recorder.append("session-a", 0, [SessionStarted(session_id="a", source="header",
                                                    client="claude-cli/2.1")])
    start_turn(recorder, "a", 1, "list the files", "key-1")
    decided = PolicyDecided(tool="git_push", policy="git", rule="git.push.denied",
                            decision="deny", reason="push is off", inputs_digest="ab" * 32,
                            fields={"remote": "origin"}, config_hash="cd" * 32, turn=1)
    recorder.append("session-a", recorder.stream_version("session-a"), [decided])
    respond(recorder, "a", 1, "Let me look.", ["Bash", "Read"])
    start_turn(recorder, "a", 2, "now fix the bug", "key-1")
    respond(recorder, "a", 2, "Fixed.", [])
    recorder.append("system", 0, [ActorCrashed(actor="x", error_type="E", error="boom")])
    recorder.append("session-b", 0, [SessionStarted(session_id="b", source="generated")])
    start_turn(recorder, "b", 1, "hello", None)
    recorder.append("session-b", 2, [UpstreamFailed(turn=1, status=502, error_type="api_error",
                                                    message="upstream down")])
    start_turn(recorder, "b", 2, "again", None)
    recorder.append("session-b", 4, [StreamAborted(turn=2, reason="stream ended without "
                                                   "a finish reason")])


def stored_transcript(db_dir: Path, session: str) -> list[dict]:
    """The session's transcript rows as `db_dir`'s projection file holds them (no catch-up)."""
    store = ProjectionStore(db_dir / "projections.db", all_projections())
    try:
        return transcript_rows(store, session)
    finally:
        store.close()
