"""structlog setup: secret-looking keys are redacted, every time, in the configured process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lynkr.logs import redact_secrets

REPO = Path(__file__).resolve().parents[2]


def test_secret_looking_keys_are_redacted_and_others_kept():
    """The memo of key verdicts gives the same answer on every call."""
    for _ in range(3):
        event = redact_secrets(None, "info", {
            "event": "x", "Authorization": "Bearer s", "api_key": "k", "x-api-key": "k",
            "refresh_token": "t", "client_secret": "s", "password": "p", "set_cookie": "c",
            "usage_in": 10, "session_id": "abc", "provider": "openai"})
        assert event == {
            "event": "x", "Authorization": "[redacted]", "api_key": "[redacted]",
            "x-api-key": "[redacted]", "refresh_token": "[redacted]",
            "client_secret": "[redacted]", "password": "[redacted]", "set_cookie": "[redacted]",
            "usage_in": 10, "session_id": "abc", "provider": "openai"}


def test_the_configured_process_logs_json_lines_with_context_and_redaction():
    """After `configure_logging` each line carries the bound context of its moment and
    redacts secrets (the memo of key verdicts included)."""
    code = (
        "import structlog\n"
        "from lynkr.logs import configure_logging\n"
        "configure_logging('info', log_format='json')\n"
        "log = structlog.get_logger()\n"
        "for n in range(2):\n"
        "    structlog.contextvars.bind_contextvars(request_id=f'req_{n}')\n"
        "    log.info('request_completed', api_key='k', n=n)\n"
        "log.debug('hidden')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True, timeout=60)
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [(x["event"], x["request_id"], x["n"], x["api_key"]) for x in lines] == [
        ("request_completed", "req_0", 0, "[redacted]"),
        ("request_completed", "req_1", 1, "[redacted]")]


def test_json_lines_carry_any_value_exactly():
    """Non-ASCII text, an int beyond 64 bits and a value JSON has no type for (its repr)."""
    code = (
        "import pathlib, structlog\n"
        "from lynkr.logs import configure_logging\n"
        "configure_logging('info', log_format='json')\n"
        "structlog.get_logger().info('noted', text='café ☕', big=2**70, "
        "where=pathlib.PurePosixPath('/x'))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, check=True)
    line = json.loads(done.stderr.strip().splitlines()[-1])
    assert (line["event"], line["text"], line["big"]) == ("noted", "café ☕", 2**70)
    assert "/x" in line["where"]
