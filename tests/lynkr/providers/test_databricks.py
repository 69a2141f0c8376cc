"""The Databricks adapter: serving-endpoint URLs, bodies without model, error_code mapping."""

from __future__ import annotations

import json

import pytest

from lynkr.errors import InvalidRequestError
from lynkr.providers._databricks import DatabricksAdapter
from lynkr.providers._settings import BackendSettings

DBX = BackendSettings(name="databricks", api_key="dapi",
                      url="https://dbc/serving-endpoints/databricks-claude-sonnet-4-5/invocations",
                      base_url="https://dbc")
BODY = {"model": "claude-sonnet-4-6", "max_tokens": 10,
        "messages": [{"role": "user", "content": "x"}]}


def test_the_configured_endpoint_is_used_unless_the_map_names_one():
    """A mapped backend model is a serving endpoint name; anything else uses the path."""
    adapter = DatabricksAdapter(DBX, endpoints=frozenset({"my-opus"}))
    assert adapter.build(BODY, "claude-sonnet-4-6", {}).url == DBX.url
    assert adapter.build(BODY, "my-opus", {}).url == \
        "https://dbc/serving-endpoints/my-opus/invocations"


def test_the_body_has_no_model_and_auth_is_bearer():
    """The endpoint decides the model; the token is a bearer token."""
    request = DatabricksAdapter(DBX).build(BODY, "x", {})
    assert "model" not in json.loads(request.body)
    assert request.headers["authorization"] == "Bearer dapi"


@pytest.mark.parametrize(("status", "code", "client_status", "error_type"), [
    (400, "BAD_REQUEST", 400, "invalid_request_error"),
    (429, "REQUEST_LIMIT_EXCEEDED", 429, "rate_limit_error"),
    (503, "TEMPORARILY_UNAVAILABLE", 529, "overloaded_error"),
    (500, "INTERNAL_ERROR", 502, "api_error"),
])
def test_databricks_error_bodies_are_mapped(status, code, client_status, error_type):
    """`error_code` and `message` of a Databricks error body reach the client mapped."""
    data = json.dumps({"error_code": code, "message": "dbx detail"}).encode()
    error = DatabricksAdapter(DBX).error(status, data, {})
    assert (error.status, error.error_type) == (client_status, error_type)
    assert "dbx detail" in error.message


def _thinking_body(thinking):
    return {**BODY, "max_tokens": 64000, "thinking": thinking}


def test_claude_endpoints_get_the_thinking_setting():
    """Extended thinking reaches a Databricks Claude endpoint in the documented shape."""
    adapter = DatabricksAdapter(DBX)
    enabled = json.loads(adapter.build(
        _thinking_body({"type": "enabled", "budget_tokens": 31999}), "x", {}).body)
    assert enabled["thinking"] == {"type": "enabled", "budget_tokens": 31999}
    adaptive = json.loads(adapter.build(_thinking_body({"type": "adaptive"}), "x", {}).body)
    assert adaptive["thinking"] == {"type": "enabled", "budget_tokens": 31999}


def test_other_endpoints_do_not_get_thinking():
    """A non-Claude endpoint is not sent Claude's thinking parameter."""
    llama = BackendSettings(name="databricks", api_key="dapi", base_url="https://dbc",
                            url="https://dbc/serving-endpoints/databricks-llama-4/invocations")
    body = json.loads(DatabricksAdapter(llama).build(
        _thinking_body({"type": "enabled", "budget_tokens": 2048}), "x", {}).body)
    assert "thinking" not in body


def test_pdf_documents_are_refused_for_databricks():
    """Databricks documents no PDF input: a PDF document is a 400, not dropped."""
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                          "data": "JVBERi0="}}
    body = {**BODY, "messages": [{"role": "user", "content": [pdf]}]}
    with pytest.raises(InvalidRequestError, match="document"):
        DatabricksAdapter(DBX).build(body, "x", {})
