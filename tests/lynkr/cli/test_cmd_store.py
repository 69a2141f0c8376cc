"""`lynkr sessions|transcript|replay|verify|projections` against a real log file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import apsw
import pytest

import eventstore.events  # noqa: F401  (registers the event classes)
from eventstore import SqliteRecorder
from eventstore.events.session import RouteChosen, SessionStarted
from lynkr.cli import main
from tests.eventstore.projections.loop_log import CALL_STARTED_SEQ, write_loop_session
from tests.eventstore.projections.sample_log import write_sample_log

COMMANDS = [["sessions"], ["transcript", "a"], ["replay", "a"], ["verify"],
            ["projections", "rebuild"], ["projections", "status"]]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data directory that the CLI's settings point at."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LYNKR_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    return tmp_path / "data"


@pytest.fixture
def sample(data_dir: Path) -> Path:
    """A data directory whose log holds the sample sessions."""
    recorder = SqliteRecorder(data_dir / "lynkr.db")
    write_sample_log(recorder)
    recorder.close()
    return data_dir


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `lynkr argv…`."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def flip_payload_byte(db: Path, stream_id: str, seq: int) -> int:
    """Flip one byte of a stored payload with plain SQL; returns the event's position."""
    conn = apsw.Connection(str(db))
    position, payload = conn.execute(
        "SELECT position, payload FROM events WHERE stream_id = ? AND seq = ?",
        (stream_id, seq)).fetchall()[0]
    changed = bytearray(payload)
    changed[-1] ^= 0x01
    conn.execute("UPDATE events SET payload = ? WHERE position = ?", (bytes(changed), position))
    conn.close()
    return int(position)


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a))
def test_every_command_has_help(argv: list[str], capsys) -> None:
    """`--help` works on every command and exits 0."""
    with pytest.raises(SystemExit) as info:
        main([*argv, "--help"])
    assert info.value.code == 0
    assert "usage: lynkr" in capsys.readouterr().out


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a))
def test_missing_log_is_a_clear_error(argv: list[str], data_dir: Path, capsys) -> None:
    """Without a log every command says where it looked, exits 1, and creates nothing."""
    code, _, err = run(capsys, *argv)
    assert code == 1
    assert "no event log at" in err
    assert not (data_dir / "lynkr.db").exists()


def test_sessions_lists_counts_and_activity(sample: Path, capsys) -> None:
    """The table shows each session's events, turns and failures."""
    code, out, _ = run(capsys, "sessions")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["SESSION", "EVENTS", "TURNS", "FAILED"]
    assert lines[1].split()[:4] == ["b", "5", "2", "2"]
    assert lines[2].split()[:4] == ["a", "8", "2", "0"]


def test_sessions_json(sample: Path, capsys) -> None:
    """`--json` gives one object per session."""
    code, out, _ = run(capsys, "sessions", "--json")
    assert code == 0
    assert {r["session_id"]: r["turns"] for r in json.loads(out)} == {"a": 2, "b": 2}


def test_transcript_is_readable(sample: Path, capsys) -> None:
    """Each turn shows model, status, user and assistant text and tools."""
    code, out, _ = run(capsys, "transcript", "a")
    assert code == 0
    assert "turn 1 · claude-sonnet · ok · tool_use" in out
    assert "user:      list the files" in out
    assert "assistant: Let me look." in out
    assert "tools:     Bash, Read" in out


def test_transcript_json_and_unknown_session(sample: Path, capsys) -> None:
    """`--json` lists the turns; an unknown session is exit 1 with its name."""
    code, out, _ = run(capsys, "transcript", "b", "--json")
    assert [r["status"] for r in json.loads(out)["turns"]] == ["failed", "aborted"]
    code, _, err = run(capsys, "transcript", "nope")
    assert code == 1
    assert "no session 'nope'" in err


def test_transcript_of_session_without_turns_says_so(sample: Path, capsys) -> None:
    """A session that only started has an empty, explained transcript."""
    recorder = SqliteRecorder(sample / "lynkr.db")
    recorder.append("session-new", 0, [SessionStarted(session_id="new", source="header")])
    recorder.close()
    code, out, _ = run(capsys, "transcript", "new")
    assert code == 0
    assert out == "session new has no turns yet\n"


def test_replay_shows_steps_and_final_state(sample: Path, capsys) -> None:
    """Every event is a step; the state at the end lists the turns."""
    code, out, _ = run(capsys, "replay", "a")
    assert code == 0
    assert "TurnStarted" in out
    assert "ModelResponded" in out
    assert "at seq 8: 8 events, 2 turns" in out
    assert "turn 2: responded" in out


def test_replay_until_travels_back_in_time(sample: Path, capsys) -> None:
    """`--until` shows the state after that event only."""
    code, out, _ = run(capsys, "replay", "a", "--until", "2", "--json")
    assert code == 0
    data = json.loads(out)
    assert [s["seq"] for s in data["steps"]] == [1, 2]
    assert data["state"]["version"] == 2
    assert [t["status"] for t in data["state"]["turns"]] == ["open"]


def test_replay_until_out_of_range_is_refused(sample: Path, capsys) -> None:
    """An --until beyond the stream is a clear error."""
    code, _, err = run(capsys, "replay", "a", "--until", "99")
    assert code == 1
    assert "--until must be between 1 and 8" in err


def test_replay_of_unfoldable_stream_names_the_event(sample: Path, capsys) -> None:
    """A stream the fold rejects exits 1 naming the seq and the reason."""
    recorder = SqliteRecorder(sample / "lynkr.db")
    recorder.append("session-a", 8, [RouteChosen(turn=9, provider="p", backend_model="m",
                                                 reason="r")])
    recorder.close()
    code, _, err = run(capsys, "replay", "a")
    assert code == 1
    assert "cannot fold session-a at seq 9" in err


def test_replay_of_unknown_event_type_names_it(sample: Path, capsys) -> None:
    """An event type this build does not know stops the replay with its name."""
    conn = apsw.Connection(str(sample / "lynkr.db"))
    conn.execute("UPDATE events SET type = 'FutureThingHappened' WHERE stream_id = 'session-a' "
                 "AND seq = 3")
    conn.close()
    code, _, err = run(capsys, "replay", "a")
    assert code == 1
    assert "seq 3" in err
    assert "FutureThingHappened" in err


def test_verify_passes_on_an_intact_log(sample: Path, capsys) -> None:
    """An untouched log verifies: exit 0 and a summary."""
    code, out, _ = run(capsys, "verify")
    assert code == 0
    assert "3 streams, 14 events checked, 0 damaged" in out


def test_verify_names_a_tampered_event(sample: Path, capsys) -> None:
    """One flipped payload byte: exit 1, naming the stream, seq and position."""
    position = flip_payload_byte(sample / "lynkr.db", "session-a", 4)
    code, out, _ = run(capsys, "verify")
    assert code == 1
    assert f"DAMAGED session-a seq 4 position {position}: hash mismatch" in out
    code, out, _ = run(capsys, "verify", "--json")
    damaged = json.loads(out)["damaged"]
    assert damaged == [{"stream_id": "session-a", "seq": 4, "position": position,
                        "reason": damaged[0]["reason"]}]


def test_verify_reports_a_deleted_event(sample: Path, capsys) -> None:
    """A row deleted from the middle of a stream is a sequence gap."""
    conn = apsw.Connection(str(sample / "lynkr.db"))
    conn.execute("DELETE FROM events WHERE stream_id = 'session-b' AND seq = 2")
    conn.close()
    code, out, _ = run(capsys, "verify")
    assert code == 1
    assert "DAMAGED session-b seq 2" in out
    assert "sequence gap" in out


def test_projections_rebuild_and_status(sample: Path, capsys) -> None:
    """Rebuilding one projection reports its position; status shows none behind."""
    code, out, _ = run(capsys, "projections", "rebuild", "transcript")
    assert code == 0
    assert "rebuilt transcript up to position 14" in out
    code, out, _ = run(capsys, "projections", "rebuild")
    assert code == 0
    code, out, _ = run(capsys, "projections", "status", "--json")
    data = json.loads(out)
    assert data["log_position"] == 14
    assert all(p["behind"] == 0 for p in data["projections"])


def test_rebuild_of_unknown_projection_is_refused(sample: Path, capsys) -> None:
    """An unknown projection name is exit 1 listing the known ones."""
    code, _, err = run(capsys, "projections", "rebuild", "nope")
    assert code == 1
    assert "no projection 'nope'" in err
    assert "transcript" in err


def test_console_script_runs_verify(sample: Path, tmp_path: Path) -> None:
    """The installed `lynkr` script verifies a tampered log with exit 1 in a real process."""
    script = Path(sys.executable).with_name("lynkr")
    env = {**os.environ, "LYNKR_DATA_DIR": str(sample)}
    ok = subprocess.run([str(script), "verify"], cwd=tmp_path, env=env, capture_output=True,
                        text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    flip_payload_byte(sample / "lynkr.db", "session-b", 1)
    bad = subprocess.run([str(script), "verify"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 1
    assert "DAMAGED session-b seq 1" in bad.stdout


def test_verify_reports_events_removed_from_the_end(sample: Path, capsys) -> None:
    """Deleting a stream's last event leaves its head behind: verify names the gap."""
    conn = apsw.Connection(str(sample / "lynkr.db"))
    conn.execute("DELETE FROM events WHERE stream_id = 'session-a' AND seq = 8")
    conn.close()
    code, out, _ = run(capsys, "verify")
    assert code == 1
    assert "DAMAGED session-a seq 8 at the end: the stream ends at seq 7" in out


def test_verify_reports_a_stream_whose_every_event_was_deleted(sample: Path, capsys) -> None:
    """A whole stream deleted from the events table is still found through its head."""
    conn = apsw.Connection(str(sample / "lynkr.db"))
    conn.execute("DELETE FROM events WHERE stream_id = 'session-b'")
    conn.close()
    code, out, _ = run(capsys, "verify")
    assert code == 1
    assert "DAMAGED session-b seq 1 at the end: the stream ends at seq 0" in out


@pytest.fixture
def loop(data_dir: Path) -> Path:
    """A data directory whose log holds the agent-loop session `loop` (`loop_log`)."""
    recorder = SqliteRecorder(data_dir / "lynkr.db")
    write_loop_session(recorder)
    recorder.close()
    return data_dir


def test_transcript_shows_loop_steps_and_tool_calls_inline(loop: Path, capsys) -> None:
    """Between the user's text and the answer: the step, the decision, the call, its result."""
    code, out, _ = run(capsys, "transcript", "loop")
    assert code == 0
    turn1 = out[out.index("── turn 1"):out.index("── turn 2")]
    lines = [line.strip() for line in turn1.splitlines()]
    expected = [
        "user:      make a task",
        'step 1 · tool_use → calls workspace_task_create({"title":"write docs"})',
        "I'll create it.",
        "policy  allow workspace_task_create by workspace_task_create.rule: "
        "workspace_task_create allowed [session]",
        "tool    workspace_task_create started [session]",
    ]
    assert lines[1:6] == expected
    assert lines[6].startswith("tool    workspace_task_create ok in 3 ms: {")
    assert lines[7] == "assistant: Created task t-1."
    assert lines[8] == f"cache   stored {'9' * 12} · 10 input tokens"


def test_transcript_shows_cache_hits_interrupts_and_events_outside_turns(loop: Path,
                                                                        capsys) -> None:
    """A cache hit, an interrupted call, the loop guard's stop and a CLI call, in order."""
    _, out, _ = run(capsys, "transcript", "loop")
    assert out.index("── turn 1") < out.index("── loop guard stopped a request") < out.index(
        "── turn 2") < out.index("── turn 3") < out.index("── policy  deny fs_read")
    assert f"cache   hit {'9' * 12} · 10 input tokens read from the cache" in out
    assert ("tool    workspace_test_run interrupted: gateway_restarted (effects possible)"
            in out)
    assert "[cli:alice]" in out
    assert "── tool    fs_read error in 0 ms: denied by policy fs.path.confined" in out


def test_transcript_json_nests_each_turn_s_events(loop: Path, capsys) -> None:
    """`--json`: turns with their events, and the events outside any turn."""
    code, out, _ = run(capsys, "transcript", "loop", "--json")
    data = json.loads(out)
    assert code == 0
    assert [e["kind"] for e in data["turns"][0]["events"]] == [
        "step", "policy", "tool_started", "tool_result", "cache_stored"]
    assert [e["kind"] for e in data["events"]] == ["loop_stopped", "policy", "tool_result"]


def test_replay_until_shows_the_loop_mid_call(loop: Path, capsys) -> None:
    """At the seq after ToolCallStarted the call is running; at the end it is completed."""
    _, out, _ = run(capsys, "replay", "loop", "--until", str(CALL_STARTED_SEQ))
    assert "turn 1: open" in out
    assert "step 1 → workspace_task_create: I'll create it." in out
    assert "call workspace_task_create [toolu_1] started (running at this point)" in out
    _, out, _ = run(capsys, "replay", "loop")
    assert "call workspace_task_create [toolu_1] completed ok: {" in out
    assert ("call workspace_test_run [toolu_3] interrupted (gateway_restarted; effects "
            "possible)") in out


def test_replay_until_json_carries_the_turn_s_calls_and_steps(loop: Path, capsys) -> None:
    """`--json` has the folded tool calls and steps as they stood at SEQ."""
    _, out, _ = run(capsys, "replay", "loop", "--until", str(CALL_STARTED_SEQ), "--json")
    turn = json.loads(out)["state"]["turns"][0]
    assert [(c["tool"], c["status"]) for c in turn["tool_calls"]] == [
        ("workspace_task_create", "started")]
    assert len(turn["steps"]) == 1
