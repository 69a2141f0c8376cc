"""`lynkr keys` as a real process, against a gateway running on the same data directory,
and `lynkr serve` on a non-loopback address with and without auth."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from functools import partial

import trio

from tests.e2e.processes import stop
from tests.lynkr.http.gateway import running_gateway

from .conftest import RunLynkr

HELLO = {"model": "claude-sonnet-4-5", "max_tokens": 64,
         "messages": [{"role": "user", "content": "hello"}]}


def test_create_prints_the_secret_once_and_stores_only_its_hash(run_lynkr: RunLynkr, tmp_path):
    """The secret is stdout's one line; the log and `keys list` never hold it."""
    created = run_lynkr("keys", "create", "--name", "laptop", "--user", "ann", "--tier", "pro",
                        "--scopes", "anthropic-proxy,admin", "--expires", "90d")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("lk-")
    assert len(secret) == 46
    assert "\n" not in secret
    listed = run_lynkr("keys", "list", "--json")
    keys = json.loads(listed.stdout)
    assert [(k["name"], k["user"], k["tier"], k["scopes"]) for k in keys] == [
        ("laptop", "ann", "pro", ["anthropic-proxy", "admin"])]
    assert secret.startswith(keys[0]["prefix"])
    assert keys[0]["expires_at"] is not None
    table = run_lynkr("keys", "list").stdout
    assert keys[0]["id"] in table
    assert "LAST USED" in table
    assert "active" in table
    stored = (tmp_path / "data" / "lynkr.db").read_bytes()
    assert secret.encode() not in stored
    assert secret not in listed.stdout + table


def test_unknown_ids_tiers_and_scopes_are_one_line_errors(run_lynkr: RunLynkr):
    """Bad input: one line on stderr, exit 1, nothing appended."""
    assert run_lynkr("keys", "revoke", "lk_000000000000").returncode == 1
    bad_scope = run_lynkr("keys", "create", "--name", "x", "--scopes", "root")
    bad_tier = run_lynkr("keys", "create", "--name", "x", "--tier", "platinum")
    assert (bad_scope.returncode, bad_tier.returncode) == (1, 1)
    assert "unknown: root" in bad_scope.stderr
    assert "unknown tier 'platinum'" in bad_tier.stderr
    assert json.loads(run_lynkr("keys", "list", "--json").stdout) == []


async def test_a_key_the_cli_creates_works_on_the_running_gateways_next_request(
        run_lynkr: RunLynkr, tmp_path):
    """CLI and gateway share the data directory: created → served at once; revoked → refused
    within LYNKR_KEYS_REFRESH; `keys list` shows when it was last used."""
    env = {"LYNKR_AUTH": "keys", "LYNKR_KEYS_REFRESH": "0.2"}
    async with running_gateway(tmp_path, env=env) as gw:
        created = await trio.to_thread.run_sync(partial(
            run_lynkr, "keys", "create", "--name", "ci", "--tier", "enterprise", "--json"))
        key = json.loads(created.stdout)
        first = await gw.post("/v1/messages", HELLO, headers={"x-api-key": key["key"]})
        revoked = await trio.to_thread.run_sync(partial(run_lynkr, "keys", "revoke", key["id"]))
        await trio.sleep(0.6)
        after = await gw.post("/v1/messages", HELLO, headers={"x-api-key": key["key"]})
    assert (created.returncode, first.status_code, revoked.returncode) == (0, 200, 0)
    assert after.status_code == 401
    assert after.json()["error"]["type"] == "authentication_error"


def test_a_non_loopback_bind_without_auth_exits_2_with_one_line(run_lynkr: RunLynkr):
    """`serve --host 0.0.0.0` with LYNKR_AUTH off: exit 2, one line saying what to set."""
    done = run_lynkr("serve", "--host", "0.0.0.0", "--port", "0")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "lynkr: config: HOST: '0.0.0.0' is not a loopback address and LYNKR_AUTH is off; set "
        "LYNKR_AUTH=keys (or jwt, keys,jwt) to serve other machines, or HOST=127.0.0.1"]


def test_a_non_loopback_bind_with_keys_serves_and_says_how_clients_authenticate(
        tmp_path, lynkr_env):
    """With LYNKR_AUTH=keys a host the loopback rule refuses is served, and the first line
    says how clients authenticate. (`::ffff:127.0.0.1` counts as non-loopback for the rule
    yet binds loopback only: team rule, no test server on other interfaces.)"""
    env = {**lynkr_env, "LYNKR_AUTH": "keys", "PORT": "0", "LOG_LEVEL": "warning"}
    proc = subprocess.Popen([sys.executable, "-m", "lynkr", "serve", "--host",
                             "::ffff:127.0.0.1"], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    lines = [proc.stderr.readline(), proc.stderr.readline()]
    stop(proc, signal.SIGTERM)
    assert lines[0] == ("lynkr: auth keys: clients send an API key (0 stored) as x-api-key or "
                        "Authorization: Bearer\n")
    assert lines[1].startswith("lynkr: listening on http://[::ffff:127.0.0.1]:")


def test_config_shows_the_auth_settings_with_the_jwt_secret_masked(run_lynkr: RunLynkr):
    """LYNKR_AUTH and LYNKR_JWT_* are in `lynkr config`, the shared secret masked."""
    done = run_lynkr("config", LYNKR_AUTH="jwt", LYNKR_JWT_SECRET="s" * 28 + "9876")
    lines = set(done.stdout.splitlines())
    assert {"LYNKR_AUTH=jwt", "LYNKR_JWT_SECRET=****9876", "LYNKR_JWT_USER_CLAIM=sub"} <= lines
    assert "s" * 28 not in done.stdout
