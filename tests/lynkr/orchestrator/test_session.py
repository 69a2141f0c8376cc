"""Session resolution order: Claude Code header, x-session-id, metadata.user_id, inferred
from the conversation, generated."""

from __future__ import annotations

import json

from lynkr.orchestrator import resolve_session

META = {"metadata": {"user_id": json.dumps({"device_id": "d", "session_id": "from-meta"})}}


def test_claude_code_header_wins():
    """`X-Claude-Code-Session-Id` beats every other source."""
    ref = resolve_session({"x-claude-code-session-id": "cc", "x-session-id": "xs"}, META)
    assert (ref.session_id, ref.source) == ("cc", "header")


def test_x_session_id_comes_second():
    """Without Claude Code's header, `x-session-id` is used."""
    assert resolve_session({"x-session-id": "xs"}, META).session_id == "xs"


def test_metadata_user_id_json_string_comes_third():
    """The `session_id` inside the JSON string `metadata.user_id` is used next."""
    ref = resolve_session({}, META)
    assert (ref.session_id, ref.source) == ("from-meta", "metadata")


def test_a_new_id_is_generated_otherwise():
    """No id anywhere and no user message to infer one from: a fresh one, marked generated."""
    ref = resolve_session({}, {"metadata": {"user_id": "plain-user"}})
    assert ref.generated
    assert len(ref.session_id) == 36


def test_unsafe_ids_are_ignored():
    """An id with spaces or slashes cannot name a stream and is skipped."""
    ref = resolve_session({"x-claude-code-session-id": "a b/../c", "x-session-id": "ok-1"}, {})
    assert ref.session_id == "ok-1"


def test_the_stream_is_named_after_the_session():
    """`session-<id>` is the stream."""
    assert resolve_session({"x-session-id": "abc"}, {}).stream_id == "session-abc"


def conversation(first: str, turns: int = 0, *, system: str = "be brief") -> dict:
    """A body resending a conversation that began with `first`, `turns` exchanges later."""
    messages = [{"role": "user", "content": first}]
    for n in range(turns):
        messages += [{"role": "assistant", "content": f"answer {n}"},
                     {"role": "user", "content": [
                         {"type": "text", "text": f"follow-up {n}",
                          "cache_control": {"type": "ephemeral"}}]}]
    return {"model": "m", "system": system, "messages": messages}


def test_a_resent_growing_history_stays_in_one_inferred_session():
    """No id: the same system and first user message map to one session as history grows."""
    refs = [resolve_session({}, conversation("hello", turns)) for turns in range(4)]
    assert {r.session_id for r in refs} == {refs[0].session_id}
    assert refs[0].source == "inferred"
    assert refs[0].generated  # the response tells the client its id
    assert refs[0].session_id.startswith("auto-")


def test_cache_control_and_string_content_do_not_split_a_conversation():
    """Markers moved to the newest message, or a string read as a text block: same session."""
    marked = conversation("hello")
    marked["messages"][0]["content"] = [{"type": "text", "text": "hello",
                                         "cache_control": {"type": "ephemeral"}}]
    assert resolve_session({}, marked) == resolve_session({}, conversation("hello", 2))


def test_a_new_first_message_starts_a_new_session():
    """Another first user message is another conversation."""
    assert (resolve_session({}, conversation("hello")).session_id
            != resolve_session({}, conversation("bonjour")).session_id)


def test_another_system_prompt_starts_a_new_session():
    """The same first message under another system prompt is another conversation."""
    assert (resolve_session({}, conversation("hello")).session_id
            != resolve_session({}, conversation("hello", system="be verbose")).session_id)


def test_different_keys_never_share_an_inferred_session():
    """Two API keys (or bearer tokens) with the same prompt get two sessions."""
    body = conversation("hello")
    ids = {resolve_session(headers, body).session_id for headers in (
        {"x-api-key": "sk-one"}, {"x-api-key": "sk-two"}, {"authorization": "Bearer t"}, {})}
    assert len(ids) == 4
    assert (resolve_session({"x-api-key": "sk-one"}, conversation("hello", 3))
            == resolve_session({"x-api-key": "sk-one"}, body))


def test_the_key_is_not_in_the_session_id():
    """The id is a digest: the key does not appear in it."""
    ref = resolve_session({"x-api-key": "sk-secret-123"}, conversation("hello"))
    assert "secret" not in ref.session_id
    assert len(ref.session_id) == len("auto-") + 32


def test_a_plain_metadata_user_id_separates_end_users():
    """`metadata.user_id` that is not Claude Code's JSON names an end user: own session."""
    alice, bob = conversation("hello"), conversation("hello")
    alice["metadata"] = {"user_id": "alice"}
    bob["metadata"] = {"user_id": "bob"}
    assert resolve_session({}, alice).session_id != resolve_session({}, bob).session_id
