"""`lynkr replay SESSION --verify` on sessions recorded by a real gateway over loopback."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import apsw
import cbor2
import pytest

from eventstore import SqliteRecorder
from eventstore.events.session import ModelResponded
from lynkr.cli import main
from lynkr.orchestrator import _loop as loop_module
from tests.lynkr.http.gateway import running_gateway

ASK = {"model": "claude-sonnet-4-6", "max_tokens": 64,
       "messages": [{"role": "user", "content": "say hello"}]}
TASKS = {"LYNKR_SERVER_TOOLS": "tasks"}
CACHE = {"PROMPT_CACHE_ENABLED": "true"}


def _session(sid: str) -> dict[str, str]:
    return {"X-Claude-Code-Session-Id": sid}


def _create(call_id: str) -> dict[str, Any]:
    return {"name": "workspace_task_create", "arguments": {"title": "notes"}, "id": call_id}


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI reads the log the test gateway wrote (tmp_path/data)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LYNKR_DATA_DIR", str(tmp_path / "data"))
    for name in ("MODEL_PROVIDER", "OPENAI_BASE_URL", "PROMPT_CACHE_ENABLED"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "data"


def verify(capsys: pytest.CaptureFixture[str], sid: str) -> tuple[int, dict[str, Any], str]:
    """(exit code, the --json report, stderr) of `lynkr replay SID --verify --json`."""
    capsys.readouterr()  # the gateway's log lines
    code = main(["replay", sid, "--verify", "--json"])
    out, err = capsys.readouterr()
    assert out.lstrip().startswith("{"), (out, err)
    return code, json.loads(out), err


async def _record(tmp_path: Path, script: Any, sid: str, bodies: list[dict[str, Any]],
                  provider: str = "openai", env: dict[str, str] | None = None) -> None:
    async with running_gateway(tmp_path, script, provider=provider, env=env) as gw:
        for body in bodies:
            response = await gw.post("/v1/messages", body, headers=_session(sid))
            assert response.status_code == 200, response.text


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_streaming_and_json_turns_verify(tmp_path, cli_env, capsys, provider) -> None:
    """Every byte a streamed and a JSON answer sent is implied by the recorded upstream."""
    script = [{"text": "Hello there, friend."}, {"text": "Hi again.", "chunks": 3}]
    await _record(tmp_path, script, "s1", [{**ASK, "stream": True}, ASK], provider)
    code, report, _ = verify(capsys, "s1")
    assert code == 0, report
    assert [(t["kind"], t["status"]) for t in report["turns"]] == [
        ("stream", "ok"), ("json", "ok")]


@pytest.mark.parametrize("stream", [True, False])
async def test_a_tool_loop_turn_verifies(tmp_path, cli_env, capsys, stream) -> None:
    """A turn whose model called a server tool is rebuilt from its steps."""
    script = [{"text": "Let me note that.", "tool_calls": [_create("toolu_a1")]},
              {"text": "Noted as a task."}]
    await _record(tmp_path, script, "loop", [{**ASK, "stream": stream}], "anthropic", TASKS)
    code, report, _ = verify(capsys, "loop")
    assert code == 0, report
    assert report["turns"][0]["kind"] == f"loop {'stream' if stream else 'json'} (2 steps)"


async def test_a_pinged_loop_stream_verifies(tmp_path, cli_env, capsys, monkeypatch) -> None:
    """Pings sent while a tool ran are timing, not content: the turn still verifies."""
    monkeypatch.setattr(loop_module, "LOOP_PING_INTERVAL_S", 0.2)
    slow = {"name": "workspace_test_run", "arguments": {}, "id": "toolu_p1"}
    env = {"LYNKR_SERVER_TOOLS": "tests", "WORKSPACE_TEST_COMMAND": "sleep 1"}
    script = [{"text": "Testing.", "tool_calls": [slow]}, {"text": "All green."}]
    async with running_gateway(tmp_path, script, provider="anthropic", env=env) as gw:
        response = await gw.post("/v1/messages", {**ASK, "stream": True},
                                 headers=_session("ping"))
    assert response.text.count("event: ping") >= 3  # the upstream's one, then the loop's
    code, report, _ = verify(capsys, "ping")
    assert code == 0, report
    assert report["turns"][0]["kind"] == "loop stream (2 steps)"


@pytest.mark.parametrize("stream", [True, False])
async def test_a_cache_hit_verifies_against_its_stored_answer(tmp_path, cli_env, capsys,
                                                              stream) -> None:
    """The second identical request is a hit; its bytes come from the CacheStored answer."""
    body = {**ASK, "stream": stream}
    await _record(tmp_path, [{"text": "Cached words."}], "c1", [body, body], env=CACHE)
    code, report, _ = verify(capsys, "c1")
    assert code == 0, report
    assert report["turns"][1]["kind"].startswith("cache hit")
    assert report["turns"][1]["status"] == "ok"


def _edit_upstream(db: Path, sid: str, turn: int, old: bytes, new: bytes) -> None:
    """Rewrite a recorded upstream answer in the blob table with plain SQL. Blobs are
    content-addressed outside the hash chain (`eventstore/_batch.py`): the events are
    untouched, and only the blob no longer hashes to its digest."""
    recorder = SqliteRecorder(db)
    event = next(r.event for r in recorder.read_stream(f"session-{sid}")
                 if isinstance(r.event, ModelResponded) and r.event.turn == turn)
    recorder.close()
    assert event.upstream is not None
    conn = apsw.Connection(str(db))
    codec, data = conn.execute("SELECT codec, data FROM blobs WHERE digest = ?",
                               (event.upstream.digest,)).fetchall()[0]
    raw = cbor2.loads(zlib.decompress(data) if codec == 1 else data)
    assert old in raw
    conn.execute("UPDATE blobs SET codec = 0, data = ? WHERE digest = ?",
                 (cbor2.dumps(raw.replace(old, new)), event.upstream.digest))
    conn.close()


@pytest.mark.parametrize("stream", [True, False])
async def test_an_edited_upstream_chunk_fails_and_names_the_turn(tmp_path, cli_env, capsys,
                                                                 stream) -> None:
    """One changed word in turn 2's recorded upstream: the hash chain still holds, `verify`
    names the blob, and `--verify` names the turn."""
    script = [{"text": "First answer.", "chunks": 1}, {"text": "Second answer.", "chunks": 1}]
    body = {**ASK, "stream": stream}
    await _record(tmp_path, script, "t1", [body, body])
    _edit_upstream(cli_env / "lynkr.db", "t1", 2, b"Second", b"Sekond")
    capsys.readouterr()
    assert main(["verify", "--json"]) == 1
    checked = json.loads(capsys.readouterr().out)
    assert checked["damaged"] == []  # every stream's chain is intact...
    assert len(checked["damaged_blobs"]) == 1  # ...but the edited answer no longer matches
    code, report, err = verify(capsys, "t1")
    assert code == 1
    assert [t["status"] for t in report["turns"]] == ["ok", "differs"]
    assert "turn 2 differs" in err


async def test_old_events_without_a_digest_are_not_verifiable(tmp_path, cli_env,
                                                              capsys) -> None:
    """A ModelResponded v2 (no client digest) is reported, not failed."""
    await _record(tmp_path, [{"text": "Old."}], "old", [ASK])
    conn = apsw.Connection(str(cli_env / "lynkr.db"))
    position, payload = conn.execute(
        "SELECT position, payload FROM events WHERE stream_id = 'session-old' "
        "AND type = 'ModelResponded'").fetchall()[0]
    fields = cbor2.loads(payload)
    del fields["client_digest"]
    conn.execute("UPDATE events SET version = 2, payload = ? WHERE position = ?",
                 (cbor2.dumps(fields), position))
    conn.close()
    code, report, _ = verify(capsys, "old")
    assert code == 0
    assert report["turns"][0]["status"] == "not verifiable"
    assert "recorded before" in report["turns"][0]["detail"]
