"""`lynkr replay SESSION --provider NAME` and `lynkr export` on a session a real gateway
recorded: the what-if against a second scripted upstream, secrets masked in exports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio

from eventstore import SqliteRecorder
from eventstore.events.whatif import WhatIfAnswered
from lynkr.cli import main
from tests.lynkr.cli.test_replay_verify import ASK, _record
from tools.fake_upstream import serve_fake_upstream

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
KEY = "lk-" + "A" * 43


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI reads the log the test gateway wrote (tmp_path/data)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LYNKR_DATA_DIR", str(tmp_path / "data"))
    for name in ("MODEL_PROVIDER", "OPENAI_BASE_URL", "ANTHROPIC_UPSTREAM_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "data"


def _events(db: Path, stream: str) -> list[Any]:
    recorder = SqliteRecorder(db)
    try:
        return [r.event for r in recorder.read_stream(stream)]
    finally:
        recorder.close()


async def test_whatif_diffs_each_turn_and_leaves_the_session_alone(
        tmp_path, cli_env, capsys, monkeypatch) -> None:
    """Two turns re-sent to a second backend: differences shown, session untouched."""
    script = [{"text": "Original one."}, {"text": "Original two."}]
    body = {**ASK, "stream": True}
    await _record(tmp_path, script, "w1", [body, ASK])
    before = _events(cli_env / "lynkr.db", "session-w1")
    second = [{"text": "Other one.", "usage": {"input_tokens": 5, "output_tokens": 2}},
              {"text": "Original two.", "tool_calls": [
                  {"name": "Bash", "arguments": {"command": "ls"}, "id": "toolu_x"}]}]
    async with trio.open_nursery() as nursery:
        fake = await nursery.start(serve_fake_upstream, second)
        monkeypatch.setenv("ANTHROPIC_UPSTREAM_URL", fake.url)
        monkeypatch.setenv("ANTHROPIC_UPSTREAM_API_KEY", "sk-second-secret")
        capsys.readouterr()
        code = await trio.to_thread.run_sync(
            main, ["replay", "w1", "--provider", "anthropic", "--json"])
        out, err = capsys.readouterr()
        sent = [r for r in fake.requests if r["path"].endswith("/v1/messages")]
        nursery.cancel_scope.cancel()
    assert code == 0, err
    report = json.loads(out)
    first, second_turn = report["turns"]
    assert first["recorded"]["text"] == "Original one."
    assert first["whatif"]["text"] == "Other one."
    assert first["whatif"]["output_tokens"] == 2 != first["recorded"]["output_tokens"]
    assert first["recorded"]["provider"] == "openai"
    assert first["whatif"]["provider"] == "anthropic"
    assert second_turn["recorded"]["stop_reason"] == "end_turn"
    assert second_turn["whatif"]["stop_reason"] == "tool_use"
    assert second_turn["whatif"]["tool_calls"] == [{"name": "Bash", "input": {"command": "ls"}}]
    assert first["whatif"]["cost_usd"] is not None  # claude-sonnet-4-6 has a list price
    assert [b["body"]["messages"] for b in sent] == [ASK["messages"]] * 2
    assert not any(b["body"].get("stream") for b in sent)
    assert _events(cli_env / "lynkr.db", "session-w1") == before
    answered = _events(cli_env / "lynkr.db", "whatif-w1")
    assert [(e.turn, e.provider) for e in answered if isinstance(e, WhatIfAnswered)] == [
        (1, "anthropic"), (2, "anthropic")]


async def test_whatif_turns_range_and_unknown_provider(tmp_path, cli_env, capsys,
                                                       monkeypatch) -> None:
    """`--turns 2..2` re-sends one turn; an unconfigured backend is a clear error."""
    await _record(tmp_path, [{"text": "a"}, {"text": "b"}], "w2", [ASK, ASK])
    capsys.readouterr()
    assert main(["replay", "w2", "--provider", "databricks"]) == 1
    assert "not configured" in capsys.readouterr().err
    async with trio.open_nursery() as nursery:
        fake = await nursery.start(serve_fake_upstream, [{"text": "B'"}])
        monkeypatch.setenv("ANTHROPIC_UPSTREAM_URL", fake.url)
        code = await trio.to_thread.run_sync(
            main, ["replay", "w2", "--provider", "anthropic", "--turns", "2..2"])
        out, _ = capsys.readouterr()
        nursery.cancel_scope.cancel()
    assert code == 0
    assert "── turn 2" in out
    assert "── turn 1" not in out
    assert "* text" in out


@pytest.mark.parametrize("fmt", ["jsonl", "har"])
async def test_export_masks_secrets(tmp_path, cli_env, capsys, monkeypatch, fmt) -> None:
    """Keys, JWTs and configured secrets in a session never reach the export."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-configured-secret-value")
    ask = {**ASK, "messages": [{"role": "user", "content":
                                f"my key {KEY}, token {JWT}, sk-configured-secret-value"}]}
    await _record(tmp_path, [{"text": "ok"}], "e1", [ask])
    capsys.readouterr()
    assert main(["export", "e1", "--format", fmt]) == 0
    out = capsys.readouterr().out
    for secret in (KEY, JWT, "sk-configured-secret-value"):
        assert secret not in out
    assert "***" in out
    if fmt == "jsonl":
        lines = [json.loads(line) for line in out.splitlines()]
        assert [line["type"] for line in lines][:2] == ["SessionStarted", "TurnStarted"]
        assert lines[-1]["type"] == "ModelResponded"
    else:
        har = json.loads(out)
        assert har["log"]["version"] == "1.2"
        assert set(har["log"]) >= {"version", "creator", "entries"}
        entry = har["log"]["entries"][0]
        assert {"startedDateTime", "time", "request", "response", "cache", "timings"} <= set(
            entry)
        assert entry["response"]["status"] == 200
        assert json.loads(entry["response"]["content"]["text"])["content"][0]["text"] == "ok"
