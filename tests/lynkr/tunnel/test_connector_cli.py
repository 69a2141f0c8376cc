"""`lynkr connect` as a real process against the fake gateway: settings precedence and
errors, and SIGTERM during a call (the call is answered, the process exits 0)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from lynkr.errors import ConfigError
from lynkr.tunnel._connector_settings import default_config_path, load_connect_settings
from tests.lynkr.tunnel.fake_gateway import KEY, USER, eventually, open_fake_gateway

REPO = Path(__file__).resolve().parents[3]


def test_flags_win_over_env_which_win_over_the_file(tmp_path):
    """Precedence: flag > LYNKR_CONNECT_* > config file; deny rules add up."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    config = tmp_path / "connect.toml"
    config.write_text(f'url = "http://file:1"\nuser_id = "file-user"\napi_key = "k-file"\n'
                      f'allowed_paths = ["{tmp_path / "a"}"]\ntransport = "poll"\n'
                      f'bash_timeout = 9\ndeny_commands = ["^from-file"]\n')
    env = {"LYNKR_CONNECT_USER_ID": "env-user", "LYNKR_CONNECT_BASH_TIMEOUT": "12",
           "LYNKR_CONNECT_DENY_COMMANDS": "^from-env"}
    settings = load_connect_settings({"bash_timeout": 15.0, "allowed_paths": None,
                                      "deny_commands": ["^from-flag"]}, env, config)
    assert (settings.url, settings.user_id, settings.api_key) == \
        ("http://file:1", "env-user", "k-file")
    assert (settings.transport, settings.bash_timeout) == ("poll", 15.0)
    assert settings.allowed_paths == ((tmp_path / "a").resolve(),)
    assert [p.pattern for p in settings.deny_commands] == ["^from-file", "^from-env",
                                                           "^from-flag"]
    assert "k-file" not in repr(settings)


def test_every_problem_is_reported_at_once(tmp_path):
    """Missing and invalid settings are listed, one line each."""
    with pytest.raises(ConfigError) as caught:
        load_connect_settings({"url": "ftp://x", "transport": "carrier-pigeon",
                               "allowed_paths": str(tmp_path / "missing"),
                               "deny_commands": ["("]}, {}, None)
    problems = "\n".join(caught.value.problems)
    for expected in ("user_id: required", "api_key: required", "url: expected http(s)",
                     "transport: one of", "is not a directory", "is not a regex"):
        assert expected in problems


def test_default_config_path_follows_xdg(tmp_path):
    """~/.config/lynkr/connect.toml, or under XDG_CONFIG_HOME."""
    assert default_config_path({"HOME": "/home/ann"}) == \
        Path("/home/ann/.config/lynkr/connect.toml")
    assert default_config_path({"XDG_CONFIG_HOME": "/x"}) == Path("/x/lynkr/connect.toml")


def test_cli_reports_missing_settings_with_exit_code_2(tmp_path):
    """`lynkr connect` without settings prints one line per problem, exit code 2."""
    done = subprocess.run([sys.executable, "-m", "lynkr", "connect"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False,
                          env={"PATH": os.environ["PATH"], "HOME": str(tmp_path),
                               "PYTHONPATH": str(REPO)})
    assert done.returncode == 2
    assert "lynkr: config: url: required" in done.stderr
    assert "Traceback" not in done.stderr


async def _connect_process(url: str, root: Path, log: Path, key: str = KEY) -> trio.Process:
    env = {"PATH": os.environ["PATH"], "HOME": str(root), "PYTHONPATH": str(REPO),
           "LYNKR_CONNECT_API_KEY": key, "LOG_FORMAT": "json"}
    with log.open("w") as sink:  # the child keeps its own copy of the descriptor
        return await trio.lowlevel.open_process(
            [sys.executable, "-m", "lynkr", "connect", "--url", url, "--user-id", USER,
             "--allowed-paths", str(root)], env=env, cwd=root,
            stdout=subprocess.DEVNULL, stderr=sink)


@pytest.mark.parametrize("signals", [1, 2])
async def test_sigterm_during_a_call_answers_it_then_exits_0(tmp_path, signals):
    """One SIGTERM lets the running call finish; a second cancels it and reports it
    with `connector.shutdown`. Either way the call is answered and the exit code is 0."""
    log = tmp_path / "connect.log"
    async with open_fake_gateway() as gw:
        process = await _connect_process(gw.url, tmp_path, log)
        try:
            with trio.fail_after(30):
                await gw.wait_registered()
                call_id = gw.queue("local_bash", {"command": "sleep 1.5; echo done"})
                await eventually(lambda: "connector_call_started" in log.read_text())
                for _ in range(signals):
                    process.send_signal(signal.SIGTERM)
                    await trio.sleep(0.1)
                result = await gw.wait_result(call_id)
                code = await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert code == 0, log.read_text()
    if signals == 1:
        assert (result.ok, result.content["output"]) == (True, "done\n")
    else:
        assert (result.ok, result.rule) == (False, "connector.shutdown")
    assert KEY not in log.read_text()


async def test_a_refused_key_exits_1_with_the_gateways_reason(tmp_path):
    """A key the gateway refuses ends `lynkr connect` with exit code 1 and one line."""
    log = tmp_path / "connect.log"
    async with open_fake_gateway() as gw:
        process = await _connect_process(gw.url, tmp_path, log, key="lk-wrong")
        with trio.fail_after(30):
            code = await process.wait()
    assert code == 1
    assert "lynkr: connect: the gateway at" in log.read_text()
    assert "refused by the fake gateway" in log.read_text()
    assert "Traceback" not in log.read_text()
