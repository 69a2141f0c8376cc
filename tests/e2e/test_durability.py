"""Acknowledged means durable: a turn the client saw complete survives `kill -9` of the gateway."""

from __future__ import annotations

import signal

import httpx

from eventstore import SqliteRecorder, verify_log
from eventstore.events.session import ModelResponded
from tests.e2e.processes import gateway_processes, stop

HELLO = {"model": "claude-sonnet-4-6", "max_tokens": 64,
         "messages": [{"role": "user", "content": "hello"}]}


def test_turns_the_client_saw_complete_survive_kill_9(tmp_path):
    """Streaming and non-streaming turns answered before SIGKILL are in the log after it."""
    with gateway_processes(tmp_path) as stack:
        headers = {"x-claude-code-session-id": "durable"}
        plain = httpx.post(stack["url"] + "/v1/messages", json=HELLO, headers=headers)
        streamed = httpx.post(stack["url"] + "/v1/messages", json={**HELLO, "stream": True},
                              headers=headers)
        assert plain.status_code == streamed.status_code == 200
        assert "event: message_stop" in streamed.text
        stop(stack["lynkr"], signal.SIGKILL)
        recorder = SqliteRecorder(stack["db"])
        try:
            events = [r.event for r in recorder.read_stream("session-durable")]
            assert all(damage is None for _, _, damage in verify_log(recorder))
        finally:
            recorder.close()
    answers = [e for e in events if isinstance(e, ModelResponded)]
    assert len(answers) == 2
