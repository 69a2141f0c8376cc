"""Through a real gateway: the loop guard stops a session stuck on empty answers, and
upstream parts Lynkr cannot translate are counted, logged once, or refused."""

from __future__ import annotations

from structlog.testing import capture_logs

from eventstore.events.session import ModelResponded, SessionLoopStopped, StreamAborted
from tests.lynkr.http.gateway import running_gateway

SESSION = {"X-Claude-Code-Session-Id": "loop-test"}
EMPTY = {"text": ""}


def _body(text: str, stream: bool = False) -> dict:
    return {"model": "claude-sonnet-4-6", "max_tokens": 64, "stream": stream,
            "messages": [{"role": "user", "content": text}]}


async def _events(gw):
    return [r.event for r in await gw.system.store.read_stream("session-loop-test")]


async def test_empty_answers_stop_the_session_after_exactly_n_upstream_calls(tmp_path):
    """Three empty answers reach the client; the fourth request is a 400 naming the loop,
    and the upstream was asked exactly three times."""
    script = {"responses": [{**EMPTY, "times": 10}]}
    async with running_gateway(tmp_path, script) as gw:
        for i in range(3):
            answer = await gw.post("/v1/messages", _body(f"nudge {i}", stream=i % 2 == 1),
                                   headers=SESSION)
            assert answer.status_code == 200
        refused = await gw.post("/v1/messages", _body("nudge 3"), headers=SESSION)
        upstream_calls = len(gw.fake.requests)
        events = await _events(gw)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("Lynkr stopped a loop")
    assert upstream_calls == 3
    stops = [e for e in events if isinstance(e, SessionLoopStopped)]
    assert [s.rule for s in stops] == ["empty_answers"]
    assert [e.visible_blocks for e in events if isinstance(e, ModelResponded)] == [0, 0, 0]


async def test_loop_guard_off_serves_every_empty_answer(tmp_path):
    """LOOP_GUARD_EMPTY_ANSWERS=off lets empty answers through."""
    script = {"responses": [{**EMPTY, "times": 10}]}
    async with running_gateway(tmp_path, script,
                               env={"LOOP_GUARD_EMPTY_ANSWERS": "off"}) as gw:
        codes = [(await gw.post("/v1/messages", _body(f"n{i}"), headers=SESSION)).status_code
                 for i in range(5)]
    assert codes == [200] * 5


async def test_an_unknown_extra_part_is_counted_and_logged_once_per_session(tmp_path):
    """The text arrives; ModelResponded counts the part; the log names it once."""
    body = {"id": "x", "object": "chat.completion", "choices": [{"index": 0,
            "finish_reason": "stop", "message": {"role": "assistant", "content": [
                {"type": "hologram", "secret": "do not log me"},
                {"type": "text", "text": "visible"}]}}]}
    script = {"responses": [{"raw_body": body, "times": 2}]}
    async with running_gateway(tmp_path, script) as gw:
        with capture_logs() as logs:
            for i in range(2):
                answer = await gw.post("/v1/messages", _body(f"q{i}"), headers=SESSION)
                assert answer.json()["content"] == [{"type": "text", "text": "visible"}]
        events = await _events(gw)
    noted = [e for e in logs if e["event"] == "upstream_part_untranslated"]
    assert len(noted) == 1
    assert noted[0]["part_type"] == "hologram"
    assert noted[0]["keys"] == ["secret", "type"]
    assert "do not log me" not in repr(logs)
    assert [e.unknown_parts for e in events if isinstance(e, ModelResponded)] == [
        {"hologram": 1}, {"hologram": 1}]


async def test_a_stream_of_only_unknown_parts_is_an_error_event_and_a_failure(tmp_path):
    """The client gets an SSE error, the turn is StreamAborted, never an empty end_turn."""
    chunk = {"id": "c", "choices": [{"index": 0, "finish_reason": None, "delta": {
        "content": [{"type": "hologram", "blob": "x"}]}}]}
    done = {"id": "c", "choices": [{"index": 0, "finish_reason": "stop", "delta": {}}]}
    script = {"responses": [{"raw_chunks": [chunk, done, "[DONE]"]}]}
    async with running_gateway(tmp_path, script) as gw:
        answer = await gw.post("/v1/messages", _body("q", stream=True), headers=SESSION)
        events = await _events(gw)
    assert "event: error" in answer.text
    assert "hologram" in answer.text
    assert "end_turn" not in answer.text
    assert isinstance(events[-1], StreamAborted)


async def test_a_normal_thirty_turn_session_is_never_stopped(tmp_path):
    """Thirty turns with answers (and the history growing) all reach the backend."""
    async with running_gateway(tmp_path) as gw:
        history: list[dict] = []
        for i in range(30):
            history.append({"role": "user", "content": f"step {i}"})
            body = {**_body(""), "messages": history, "stream": i % 2 == 0}
            answer = await gw.post("/v1/messages", body, headers=SESSION)
            assert answer.status_code == 200, answer.text
            history.append({"role": "assistant", "content": f"done {i}"})
        upstream_calls = len(gw.fake.requests)
        events = await _events(gw)
    assert upstream_calls == 30
    assert not any(isinstance(e, SessionLoopStopped) for e in events)


async def test_an_untranslatable_stream_is_not_asked_again(tmp_path):
    """Content Lynkr cannot translate is deterministic: one upstream call, no retry."""
    chunk = {"id": "c", "choices": [{"index": 0, "finish_reason": "stop", "delta": {
        "content": [{"type": "hologram"}]}}]}
    script = {"responses": [{"raw_chunks": [chunk, "[DONE]"], "times": 3}]}
    async with running_gateway(tmp_path, script) as gw:
        answer = await gw.post("/v1/messages", _body("q", stream=True), headers=SESSION)
        calls = len(gw.fake.requests)
    # Whether the failure shows before the first byte (a 502 JSON error) or after it (an
    # SSE error event) depends on how the upstream's bytes arrive; either way it is an
    # error naming the part, asked once.
    if answer.status_code == 200:
        assert "event: error" in answer.text
    else:
        assert answer.json()["error"]["type"] == "api_error"
    assert "hologram" in answer.text
    assert calls == 1
