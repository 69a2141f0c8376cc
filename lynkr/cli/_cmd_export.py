"""`lynkr export SESSION --format jsonl|har`: one session to attach to a bug report.

`jsonl` writes one line per event of the `session-<id>` stream (its place, type,
version, time and fields, every blob it refers to inlined as JSON). `har` writes an
HTTP Archive 1.2 log with one entry per turn: the `/v1/messages` request rebuilt from
`TurnStarted` and the answer from `ModelResponded` (or the error the client got), so a
HAR viewer shows the session. Secrets are masked everywhere: the values of the headers
`authorization`, `x-api-key` and the like, the values of the configured
`SECRET_NAMES`, API keys (`lk-…`) and JWTs. Output goes to stdout or `--output FILE`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from lynkr.cli._session import session_arg
from lynkr.cli._setup import load_cli_settings
from lynkr.errors import NotFoundError

__all__ = ["mask_secrets", "register"]

MASK = "***"
_SECRET_HEADERS = frozenset({"authorization", "x-api-key", "proxy-authorization", "cookie",
                             "x-lynkr-admin-token", "api-key"})
_PATTERNS = (
    re.compile(r"lk-[A-Za-z0-9_\-]{8,}"),  # Lynkr API keys
    re.compile(r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"),  # JWTs
)


def register(subparsers: Any) -> None:
    """Add `export`."""
    parser = subparsers.add_parser(
        "export", help="one session as JSON lines or HAR, secrets masked",
        description="Write a session's events (jsonl) or its requests and answers (har) "
                    "for a bug report; authorization headers, configured secrets, API "
                    "keys and JWTs are masked.")
    parser.add_argument("session", metavar="SESSION", type=session_arg,
                        help="session id, X or session-X")
    parser.add_argument("--format", choices=("jsonl", "har"), default="jsonl")
    parser.add_argument("--output", metavar="FILE", help="write here instead of stdout")
    parser.set_defaults(handler=_export)


def mask_secrets(value: Any, secrets: Iterable[str] = ()) -> Any:
    """`value` (JSON-like) with secrets replaced by `***` (see module docstring).

    Args:
        value: what to mask: dicts, lists and strings are walked.
        secrets: literal values to mask wherever they occur (configured secrets).
    """
    literals = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
    return _mask(value, literals)


def _mask(value: Any, literals: list[str]) -> Any:
    if isinstance(value, str):
        for literal in literals:
            value = value.replace(literal, MASK)
        for pattern in _PATTERNS:
            value = pattern.sub(MASK, value)
        return value
    if isinstance(value, dict) and str(value.get("name", "")).lower() in _SECRET_HEADERS:
        return {**value, "value": MASK}  # a HAR header
    if isinstance(value, dict):
        return {k: MASK if str(k).lower() in _SECRET_HEADERS else _mask(v, literals)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v, literals) for v in value]
    return value


def _configured_secrets() -> list[str]:
    import os

    from lynkr.config import SECRET_NAMES
    return [os.environ[name] for name in SECRET_NAMES if os.environ.get(name)]


def _export(args: argparse.Namespace) -> int:
    from lynkr.cli._cmd_store import open_log
    settings = load_cli_settings()
    stream = "session-" + args.session
    secrets = _configured_secrets()
    with open_log(settings) as recorder:
        records = recorder.read_stream(stream)
        if not records:
            raise NotFoundError(f"no session {args.session!r} in the log")
        if args.format == "jsonl":
            text = "".join(json.dumps(mask_secrets(_jsonl_line(recorder, r), secrets),
                                      default=str) + "\n" for r in records)
        else:
            har = _har(recorder, [r.event for r in records], records)
            text = json.dumps(mask_secrets(har, secrets), indent=2, default=str) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _inline(recorder: Any, value: Any) -> Any:
    """Event fields with every blob reference replaced by its JSON content."""
    from eventstore import BlobRef, thaw
    if isinstance(value, BlobRef):
        content = thaw(recorder.load_blob(value))
        return content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    if isinstance(value, dict):
        return {k: _inline(recorder, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_inline(recorder, v) for v in value]
    return value


def _fields(event: Any) -> dict[str, Any]:
    from dataclasses import fields
    return {f.name: getattr(event, f.name) for f in fields(event)}


def _jsonl_line(recorder: Any, record: Any) -> dict[str, Any]:
    return {"seq": record.seq, "position": record.position, "type": record.type_name,
            "version": type(record.event).class_version, "recorded_at": record.recorded_at,
            "event": _inline(recorder, _fields(record.event))}


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def _har(recorder: Any, events: list[Any], records: list[Any]) -> dict[str, Any]:
    """An HTTP Archive 1.2 log: one entry per turn (see module docstring)."""
    from lynkr._version import lynkr_version
    from lynkr.cli._replay_verify import recorded_turns, request_body
    times = {id(r.event): r.recorded_at for r in records}
    entries = []
    for turn in recorded_turns(events):
        body = request_body(recorder, turn.started)
        end = turn.end
        headers = [{"name": k, "value": v} for k, v in (turn.started.headers or {}).items()]
        status, answer, latency = 0, {}, 0.0
        if type(end).__name__ == "ModelResponded":
            status, answer, latency = 200, _inline(recorder, end.message), end.latency_ms
        elif type(end).__name__ == "UpstreamFailed":
            status = end.status
            answer = {"type": "error", "error": {"type": end.error_type, "message": end.message}}
        elif end is not None:
            status, answer = 200, {"aborted": end.reason}
        text = json.dumps(body)
        answer_text = json.dumps(answer)
        entries.append({
            "startedDateTime": _iso(times.get(id(turn.started), 0.0)),
            "time": latency,
            "request": {"method": "POST", "url": "http://lynkr/v1/messages",
                        "httpVersion": "HTTP/1.1", "cookies": [], "headers": headers,
                        "queryString": [], "headersSize": -1, "bodySize": len(text),
                        "postData": {"mimeType": "application/json", "text": text}},
            "response": {"status": status, "statusText": "", "httpVersion": "HTTP/1.1",
                         "cookies": [], "headers": [], "redirectURL": "", "headersSize": -1,
                         "bodySize": len(answer_text),
                         "content": {"size": len(answer_text), "mimeType": "application/json",
                                     "text": answer_text}},
            "cache": {}, "timings": {"send": 0, "wait": latency, "receive": 0},
            "comment": f"turn {turn.started.turn}"})
    return {"log": {"version": "1.2", "creator": {"name": "lynkr", "version": lynkr_version()},
                    "entries": entries}}
