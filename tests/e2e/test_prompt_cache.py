"""The prompt cache in a real `lynkr serve`: a hit never reaches the upstream, and a cache
that answered before `kill -9` answers again after a restart (warmed from the log)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import httpx

from eventstore import SqliteRecorder, verify_log
from eventstore.events.session import CacheHit, CacheStored, ModelResponded
from tests.e2e.processes import REPO, gateway_processes, provider_env, start, stop

ASK = {"model": "claude-sonnet-4-6", "max_tokens": 64,
       "messages": [{"role": "user", "content": "what is a prompt cache?"}]}
SESSION = {"x-claude-code-session-id": "cache-e2e"}


def _upstream_requests(fake: str) -> int:
    return len(httpx.get(fake + "/_requests").json())


def _events(db: Path) -> list[object]:
    recorder = SqliteRecorder(db)
    try:
        assert all(damage is None for _, _, damage in verify_log(recorder))
        return [r.event for r in recorder.read_stream("session-cache-e2e")]
    finally:
        recorder.close()


def test_a_hit_survives_kill_9_and_restart(tmp_path):
    """Miss, streamed hit, kill -9, restart on the same data: the next identical request is
    a hit again, with no new upstream request."""
    with gateway_processes(tmp_path, extra_env={"PROMPT_CACHE_ENABLED": "true"}) as stack:
        first = httpx.post(stack["url"] + "/v1/messages", json=ASK, headers=SESSION)
        hit = httpx.post(stack["url"] + "/v1/messages", json={**ASK, "stream": True},
                         headers=SESSION)
        assert first.status_code == hit.status_code == 200
        assert '"cache_read_input_tokens":' in hit.text
        assert "event: message_stop" in hit.text
        assert _upstream_requests(stack["fake"]) == 1
        stop(stack["lynkr"], signal.SIGKILL)
        fake_port = int(stack["fake"].rsplit(":", 1)[1])
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(REPO),
               "PORT": "0", "LOG_LEVEL": "warning", **provider_env("openai", fake_port)}
        again, url = start([sys.executable, "-m", "lynkr", "serve"], tmp_path / "server", env,
                           "lynkr: listening on ", "stderr")
        try:
            after = httpx.post(url + "/v1/messages", json=ASK, headers=SESSION)
            assert _upstream_requests(stack["fake"]) == 1
        finally:
            stop(again)
        events = _events(stack["db"])
    body = after.json()
    assert body["content"] == first.json()["content"]
    assert body["usage"]["cache_read_input_tokens"] > 0
    assert [type(e) for e in events].count(CacheStored) == 1
    hits = [e for e in events if isinstance(e, CacheHit)]
    assert [h.turn for h in hits] == [2, 3]
    assert [e.provider for e in events if isinstance(e, ModelResponded)] == [
        "openai", "cache", "cache"]
    assert body["id"] != first.json()["id"]
