"""The upstream error table, retry-after parsing, and error messages of every dialect."""

from __future__ import annotations

import json

import pytest

from lynkr.providers._upstream import error_message_from_body, map_status, parse_retry_after


@pytest.mark.parametrize(("upstream", "status", "error_type"), [
    (400, 400, "invalid_request_error"), (422, 400, "invalid_request_error"),
    (401, 502, "api_error"), (403, 502, "api_error"), (404, 502, "api_error"),
    (408, 504, "timeout_error"), (413, 413, "request_too_large"),
    (429, 429, "rate_limit_error"), (500, 502, "api_error"), (502, 502, "api_error"),
    (503, 529, "overloaded_error"), (504, 502, "api_error"), (529, 529, "overloaded_error"),
    (418, 502, "api_error"),
])
def test_status_table(upstream, status, error_type):
    """Every upstream status maps to the documented client status and type."""
    error = map_status("openai", upstream, b"{}", {})
    assert (error.status, error.error_type, error.upstream_status) == (status, error_type, upstream)


def test_retry_after_seconds_and_milliseconds():
    """`retry-after-ms` is preferred; seconds otherwise; dates and junk are ignored."""
    assert parse_retry_after({"retry-after": "12"}) == 12.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None
    assert parse_retry_after({}) is None


@pytest.mark.parametrize(("body", "message"), [
    ({"type": "error", "error": {"type": "x", "message": "anthropic says"}}, "anthropic says"),
    ({"error": {"message": "openai says", "type": "invalid_request_error"}}, "openai says"),
    ({"error_code": "BAD_REQUEST", "message": "databricks says"}, "BAD_REQUEST: databricks says"),
    ({"error": "ollama says"}, "ollama says"),
])
def test_error_messages_of_every_dialect(body, message):
    """Anthropic, OpenAI, Databricks and plain-string error bodies yield their message."""
    assert error_message_from_body(json.dumps(body).encode()) == message


def test_a_non_json_error_body_is_shown_as_text():
    """An HTML error page still gives a (short) message."""
    assert error_message_from_body(b"<h1>Bad Gateway</h1>") == "<h1>Bad Gateway</h1>"
