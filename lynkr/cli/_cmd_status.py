"""`lynkr status`: is a gateway running, where, which provider, sessions today, last error.

The gateway is looked for where the settings say it listens (`HOST`:`PORT`; a wildcard
host is asked on 127.0.0.1): its `GET /health` answers, or not. The data directory's
`gateway.lock` names the pid of the gateway that holds it, if that process is alive.
Sessions today (active since 00:00 UTC) come from the `sessions` projection, caught up
with the log first (safe beside a running server); the last error is the newest
`UpstreamFailed` or `StreamAborted` (other than a client leaving) of the most recently
failed sessions. `--json` prints one object for scripts. Exit codes: 0 a gateway
answers, 1 none does, 2 bad settings.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lynkr.cli._setup import load_cli_settings

if TYPE_CHECKING:
    from lynkr.config import Settings

__all__ = ["gateway_url", "probe_health", "register"]

_FAILED_SESSIONS_SCANNED = 20  # newest sessions with failures searched for the last error


def gateway_url(settings: Settings) -> str:
    """Where a client on this machine reaches the configured gateway."""
    host = settings.server.host
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{settings.server.port}"


def probe_health(url: str, timeout: float = 2.0) -> tuple[dict[str, Any] | None, str | None]:
    """`GET url/health`: its JSON (200 or 503 both mean a gateway answers), or why not."""
    import urllib.error  # here, not at the top: `lynkr --help` never pays for them
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:
            return json.loads(response.read()), None
    except urllib.error.HTTPError as exc:
        try:
            return json.loads(exc.read()), None
        except ValueError:
            return None, f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, str(reason)


def _lock_pid(data_dir: Path) -> int | None:
    """The pid in the data directory's gateway lock, if that process is alive."""
    from lynkr._gateway_lock import LOCK_NAME

    try:
        text = (data_dir / LOCK_NAME).read_text().strip()
    except OSError:
        return None
    if not text.isdigit():
        return None
    try:
        os.kill(int(text), 0)
    except ProcessLookupError:
        return None  # a stale file: the lock died with its process
    except PermissionError:
        pass  # alive, another user's
    return int(text)


def _from_log(settings: Settings) -> dict[str, Any]:
    """Sessions active today and the last error, or why they cannot be read."""
    if not settings.db_path.is_file():
        return {"sessions_today": 0, "last_error": None, "log": "no event log yet"}
    from datetime import UTC, datetime

    from lynkr.cli._cmd_store import _projections, _recorder

    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with _recorder(settings) as recorder, _projections(settings, recorder) as store:
        today = store.query("SELECT count(*) AS n FROM sessions WHERE last_at >= ?",
                            [midnight.timestamp()])[0]["n"]
        failed = store.query("SELECT session_id FROM sessions WHERE failures > 0 "
                             "ORDER BY last_position DESC LIMIT ?", [_FAILED_SESSIONS_SCANNED])
        last = None
        for row in failed:
            last = _last_failure(recorder, row["session_id"])
            if last is not None:
                break
    return {"sessions_today": today, "last_error": last}


def _last_failure(recorder: Any, session_id: str) -> dict[str, Any] | None:
    from eventstore.events.session import StreamAborted, UpstreamFailed

    for record in reversed(recorder.read_stream(f"session-{session_id}")):
        event = record.event
        if isinstance(event, UpstreamFailed):
            what = f"{event.status} {event.error_type}: {event.message}"
        elif isinstance(event, StreamAborted) and event.reason != "client_disconnected":
            what = f"stream aborted: {event.reason}"
        else:
            continue
        return {"at": record.recorded_at, "session_id": session_id, "turn": event.turn,
                "provider": event.provider, "error": what}
    return None


def _status(args: argparse.Namespace) -> int:
    settings = load_cli_settings()
    url = gateway_url(settings)
    health, problem = probe_health(url)
    report: dict[str, Any] = {
        "running": health is not None, "url": url, "pid": _lock_pid(settings.server.data_dir),
        "data_dir": str(settings.server.data_dir),
        "provider": (health or {}).get("provider", {}).get("active")
        or settings.providers.provider,
        "health": (health or {}).get("status"), "version": (health or {}).get("version"),
        **_from_log(settings)}
    if problem is not None:
        report["problem"] = problem
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    return 0 if health is not None else 1


def _print(report: dict[str, Any]) -> None:
    pid = f" (pid {report['pid']})" if report["pid"] else ""
    if report["running"]:
        print(f"gateway: running{pid} at {report['url']}, health {report['health']}, "
              f"lynkr {report['version']}")
    else:
        held = f"; pid {report['pid']} holds the data directory's lock" if pid else ""
        print(f"gateway: not running at {report['url']} ({report.get('problem')}){held}")
    print(f"data directory: {report['data_dir']}")
    print(f"provider: {report['provider']}")
    print(f"sessions today (UTC): {report['sessions_today']}")
    last = report["last_error"]
    if last is None:
        print("last error: none")
    else:
        at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(last["at"]))
        print(f"last error: {at} session {last['session_id']} turn {last['turn']}: "
              f"{last['error']}")


def register(subparsers: Any) -> None:
    """Add `status`."""
    status = subparsers.add_parser(
        "status", help="is a gateway running; where, which provider, sessions today, "
                       "last error",
        description="Ask the configured gateway's /health and read the log: where it runs, "
                    "its provider, sessions active today and the last error. Exit 0 if a "
                    "gateway answers, 1 if none does.")
    status.add_argument("--json", action="store_true", help="one JSON object")
    status.set_defaults(handler=_status)
