"""`lynkr usage` and `GET /api/v1/usage` equal what the clients were told, also after a
rebuild of the projections."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.lynkr.http.gateway import Gateway, running_gateway

REPO = Path(__file__).resolve().parents[3]
TOKENS = ("input_tokens", "output_tokens", "cache_read_input_tokens",
          "cache_creation_input_tokens")


def _body(text: str, stream: bool) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-6", "max_tokens": 64, "stream": stream,
            "messages": [{"role": "user", "content": text}]}


def _stream_usage(response: httpx.Response) -> dict[str, int]:
    """The usage a streaming client sees: message_start's, updated by message_delta's."""
    usage: dict[str, int] = {}
    for line in response.text.splitlines():
        if not line.startswith("data: "):
            continue
        data = json.loads(line[6:])
        if data.get("type") == "message_start":
            usage.update(data["message"].get("usage") or {})
        elif data.get("type") == "message_delta":
            usage.update(data.get("usage") or {})
    return usage


async def _send_turns(gateway: Gateway) -> dict[str, int]:
    """Five turns (three plain, two streamed); the usage the client was told, summed."""
    seen = dict.fromkeys(TOKENS, 0)
    for i in range(5):
        stream = i % 2 == 1
        response = await gateway.post("/v1/messages", _body(f"question number {i} " * (i + 1),
                                                            stream))
        assert response.status_code == 200, response.text
        usage = _stream_usage(response) if stream else response.json()["usage"]
        for name in TOKENS:
            seen[name] += int(usage.get(name) or 0)
    return seen


def _lynkr(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "PYTHONPATH": str(REPO), "LYNKR_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run([sys.executable, "-m", "lynkr", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def _totals(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {name: sum(int(r[name]) for r in rows) for name in ("requests", *TOKENS)}


async def test_usage_equals_what_the_clients_received(tmp_path: Path) -> None:
    """`lynkr usage` sums to the responses' usage; so does `GET /api/v1/usage`; a
    rebuild of the projections gives the same numbers."""
    async with running_gateway(tmp_path) as gateway:
        seen = await _send_turns(gateway)
        api = await gateway.client.get(gateway.url + "/api/v1/usage", params={"by": "model"})
        assert api.status_code == 200, api.text
        assert _totals(api.json()["data"]) == {"requests": 5, **seen}
    assert seen["input_tokens"] > 0
    assert seen["output_tokens"] > 0
    done = _lynkr(tmp_path, "usage", "--json", "--by", "key")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["key"] for r in rows] == ["anonymous"]
    assert _totals(rows) == {"requests": 5, **seen}
    assert _lynkr(tmp_path, "projections", "rebuild").returncode == 0
    again = _lynkr(tmp_path, "usage", "--json", "--by", "day")
    assert _totals(json.loads(again.stdout)) == {"requests": 5, **seen}


async def test_usage_csv_and_filters(tmp_path: Path) -> None:
    """--csv prints a header and a row per group; a day range with no usage is empty."""
    async with running_gateway(tmp_path) as gateway:
        await _send_turns(gateway)
    csv_out = _lynkr(tmp_path, "usage", "--csv", "--by", "model")
    assert csv_out.returncode == 0, csv_out.stderr
    lines = csv_out.stdout.splitlines()
    assert lines[0].startswith("model,requests,input_tokens")
    assert len(lines) == 2
    empty = _lynkr(tmp_path, "usage", "--since", "2001-01-01", "--until", "2001-01-02")
    assert (empty.returncode, empty.stdout.strip()) == (0, "no usage recorded for these filters")
    bad = _lynkr(tmp_path, "usage", "--since", "yesterday")
    assert bad.returncode == 1
    assert "YYYY-MM-DD" in bad.stderr


async def test_usage_api_refuses_a_bad_filter_with_anthropic_json(tmp_path: Path) -> None:
    """A grouping the projection does not know is a 400 invalid_request_error."""
    async with running_gateway(tmp_path) as gateway:
        response = await gateway.client.get(gateway.url + "/api/v1/usage",
                                            params={"by": "color"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_a_key_sees_its_own_usage_and_an_admin_sees_all(tmp_path: Path) -> None:
    """GET /api/v1/usage: own rows only for a plain key (403 for another's), all for admin."""
    from tests.lynkr.gateway.test_limits_http import mint_keys

    ann, bob = mint_keys(tmp_path, ("laptop", "ann", "pro"), ("desktop", "bob", "pro"))
    [admin] = mint_keys(tmp_path, ("ops", "root", "pro"), scopes="anthropic-proxy,admin")
    async with running_gateway(tmp_path, env={"LYNKR_AUTH": "keys"}) as gateway:
        for n, secret in enumerate((ann, ann, bob)):
            response = await gateway.post("/v1/messages", _body(f"q{n}", False),
                                          headers={"x-api-key": secret})
            assert response.status_code == 200, response.text

        async def usage(secret: str, **params: str) -> httpx.Response:
            return await gateway.client.get(gateway.url + "/api/v1/usage",
                                            params={"by": "user", **params},
                                            headers={"x-api-key": secret})

        own = await usage(ann)
        assert [(r["user"], r["requests"]) for r in own.json()["data"]] == [("ann", 2)]
        refused = await usage(ann, user="bob")
        assert refused.status_code == 403
        assert refused.json()["error"]["type"] == "permission_error"
        everyone = await usage(admin)
        assert [(r["user"], r["requests"]) for r in everyone.json()["data"]] == [
            ("ann", 2), ("bob", 1)]
        assert (await gateway.client.get(gateway.url + "/api/v1/usage")).status_code == 401
