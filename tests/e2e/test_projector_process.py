"""A real `lynkr serve` keeps projections.db caught up through its projection worker
process, and leaves no worker behind however it ends."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx

from tests.e2e.processes import gateway_processes, stop
from tests.eventstore.projections.sample_log import stored_transcript

HELLO = {"model": "claude-sonnet-4-6", "max_tokens": 64,
         "messages": [{"role": "user", "content": "hello from the e2e test"}]}


def workers_of(pid: int) -> list[int]:
    """Live `lynkr.projector` processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z" and b"lynkr.projector" in argv:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(predicate, timeout: float = 20.0) -> bool:
    """Poll `predicate` until it holds (True) or `timeout` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_turn_reaches_the_transcript_without_any_catch_up_of_ours(tmp_path):
    """The worker process, not this test, writes the turn's transcript row."""
    with gateway_processes(tmp_path) as stack:
        answered = httpx.post(stack["url"] + "/v1/messages", json=HELLO,
                              headers={"x-claude-code-session-id": "projected"})
        assert answered.status_code == 200
        data = stack["db"].parent
        assert wait_for(lambda: len(stored_transcript(data, "projected")) == 1)
        [row] = stored_transcript(data, "projected")
        assert row["user_text"] == "hello from the e2e test"
        assert len(workers_of(stack["lynkr"].pid)) == 1


def test_the_worker_exits_when_the_gateway_is_killed(tmp_path):
    """SIGKILL gives the gateway no say; the worker sees its stdin end and exits."""
    with gateway_processes(tmp_path) as stack:
        assert httpx.post(stack["url"] + "/v1/messages", json=HELLO).status_code == 200
        assert wait_for(lambda: len(workers_of(stack["lynkr"].pid)) == 1)
        [worker] = workers_of(stack["lynkr"].pid)
        stop(stack["lynkr"], signal.SIGKILL)
        assert wait_for(lambda: not alive(worker), timeout=10)


def test_the_worker_exits_with_the_gateway_on_sigterm(tmp_path):
    """A clean stop closes the worker's stdin and waits for it."""
    with gateway_processes(tmp_path) as stack:
        assert wait_for(lambda: len(workers_of(stack["lynkr"].pid)) == 1)
        [worker] = workers_of(stack["lynkr"].pid)
        stop(stack["lynkr"])
        assert stack["lynkr"].returncode == 0
        assert wait_for(lambda: not alive(worker), timeout=10)
