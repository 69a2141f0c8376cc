"""Session resolution order: Claude Code header, x-session-id, metadata.user_id, generated."""

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
    """No id anywhere: a fresh one, marked generated."""
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
