"""structlog configuration: one event name plus key/values, secrets redacted.

`configure_logging(level, log_format=…)` is called once by each CLI command (and by
the projector child). Logs always go to stderr, so stdout carries only a command's
result. `LOG_FORMAT` picks the renderer: `auto` (the default) is human-readable
(structlog's console renderer) when stderr is a terminal and JSON lines otherwise;
`console` and `json` force one. JSON lines are written by orjson (a request's
canonical line, written on every request, cost ~25 µs with `json.dumps`), with
`json` for what orjson refuses. The `redact_secrets` processor drops values under
secret-looking keys (authorization, api keys, tokens) wherever a caller put them, as
the last line of defence: callers should never log them in the first place.
"""

from __future__ import annotations

import json as json_module
import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import orjson
import structlog

__all__ = ["LOG_FORMATS", "configure_logging", "redact_secrets", "renders_json"]

LOG_FORMATS = ("auto", "console", "json")
"""The values of LOG_FORMAT."""

_SECRET_KEY = re.compile(r"(authorization|api[_-]?key|token|secret|password|cookie)", re.I)


_SECRET_KEYS: dict[str, bool] = {"event": False}  # key -> is it secret-looking (memo)
_SECRET_KEYS_MAX = 4096  # log keys are identifiers in the code; a bound all the same


def _is_secret(key: str) -> bool:
    secret = _SECRET_KEYS.get(key)
    if secret is None:
        secret = _SECRET_KEY.search(key) is not None
        if len(_SECRET_KEYS) < _SECRET_KEYS_MAX:
            _SECRET_KEYS[key] = secret
    return secret


def redact_secrets(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: replace values of secret-looking keys by ``"[redacted]"``."""
    for key in [k for k in event if _is_secret(k)]:
        event[key] = "[redacted]"
    return event


def _render(event: Any, *, default: Any = None, **_: Any) -> str:
    """structlog's JSON serializer: orjson, with structlog's fallback for other types."""
    try:
        return orjson.dumps(event, default=default).decode()
    except orjson.JSONEncodeError:  # a huge int, a lone surrogate, a non-str key
        return json_module.dumps(event, default=default)


class _StderrLogger:
    """Writes each line to `sys.stderr` as it is at that moment: a test harness or a
    redirection that replaces stderr after configuration is followed, never a closed
    stream kept from before. One write per line, so threads do not interleave lines."""

    def msg(self, message: str) -> None:
        stream = sys.stderr
        stream.write(message + "\n")
        stream.flush()

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


_STDERR_LOGGER = _StderrLogger()


def _stderr_logger(*_args: Any) -> _StderrLogger:
    return _STDERR_LOGGER


def renders_json(log_format: str, stream: TextIO) -> bool:
    """Whether `log_format` (one of `LOG_FORMATS`) means JSON lines on `stream`."""
    if log_format == "auto":
        return not stream.isatty()
    return log_format == "json"


def configure_logging(level: str = "info", *, log_format: str = "auto") -> None:
    """Set up structlog for the process, writing to stderr.

    Args:
        level: the lowest level logged (LOG_LEVEL).
        log_format: `auto` (console on a terminal, JSON otherwise), `console` or `json`.
    """
    numeric = logging.getLevelName(level.upper())
    use_json = renders_json(log_format, sys.stderr)
    renderer: Any = (structlog.processors.JSONRenderer(serializer=_render) if use_json
                     else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
