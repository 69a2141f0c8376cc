"""`lynkr replay SESSION --provider NAME [--turns A..B]`: the session against another backend.

Each recorded turn's request is rebuilt from its `TurnStarted` blobs and sent, without
streaming, to the configured backend NAME (the settings `lynkr serve` reads; the
adapter `lynkr.system.make_adapter` builds, over a plain httpx client). Per turn it
shows the recorded answer and the new one side by side: text, tool calls, stop reason,
tokens, latency and an estimated cost (the `[prices]` table of `lynkr.gateway`).
Every new answer is recorded as `WhatIfAnswered` in the stream `whatif-<session id>`;
the session stream itself is never appended to. Exit 0 when every turn was answered,
1 when the backend failed one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from eventstore import ANY_VERSION, Recorder, make_blob, thaw
from eventstore.events.session import ModelResponded
from eventstore.events.whatif import WhatIfAnswered
from lynkr.cli._replay_verify import recorded_turns, request_body
from lynkr.errors import LynkrError

if TYPE_CHECKING:
    from lynkr.config import Settings

__all__ = ["answer_summary", "parse_turns", "run_whatif"]

_TIMEOUT = 120.0  # seconds for one re-sent turn


class WhatIfError(LynkrError, status=400, error_type="invalid_request_error"):
    """A what-if cannot run: an unknown backend or a malformed `--turns`."""


def parse_turns(spec: str | None) -> tuple[int, int]:
    """`A..B`, `A..`, `..B` or `A` as an inclusive range of turns.

    Raises:
        WhatIfError: the range is not numbers or is empty.
    """
    if not spec:
        return 1, 1 << 30
    start, sep, stop = spec.partition("..")
    try:
        low = int(start) if start else 1
        high = (int(stop) if stop else 1 << 30) if sep else low
    except ValueError as exc:
        raise WhatIfError(f"--turns {spec!r}: expected A..B") from exc
    if low < 1 or high < low:
        raise WhatIfError(f"--turns {spec!r}: an empty range")
    return low, high


def answer_summary(message: Mapping[str, Any] | None, usage: Mapping[str, int],
                   latency_ms: float, cost: float | None) -> dict[str, Any]:
    """What the diff compares of one answer."""
    content = list((message or {}).get("content") or ())
    return {
        "text": "".join(str(b.get("text", "")) for b in content if b.get("type") == "text"),
        "tool_calls": [{"name": b.get("name"), "input": b.get("input")}
                       for b in content if b.get("type") == "tool_use"],
        "stop_reason": (message or {}).get("stop_reason"),
        "input_tokens": int(usage.get("input_tokens", 0)),
        "output_tokens": int(usage.get("output_tokens", 0)),
        "latency_ms": round(latency_ms, 1),
        "cost_usd": None if cost is None else round(cost, 6),
    }


def _send(adapter: Any, url_body: Any, client: httpx.Client, body: Mapping[str, Any]
          ) -> tuple[dict[str, Any] | None, str | None, float]:
    started = time.perf_counter()
    try:
        response = client.post(url_body.url, headers=url_body.headers, content=url_body.body)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code >= 400:
            error = adapter.error(response.status_code, response.content, response.headers)
            return None, f"{error.error_type}: {error.message}", elapsed
        return adapter.parse(response.content, body), None, elapsed
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}", (time.perf_counter() - started) * 1000
    except LynkrError as exc:
        return None, f"{exc.error_type}: {exc.message}", (time.perf_counter() - started) * 1000


def run_whatif(recorder: Recorder, settings: Settings, session: str, events: Sequence[Any],
               provider: str, turns: str | None, *, as_json: bool) -> int:
    """Re-send the session's turns to `provider`, record and print the diff.

    Raises:
        WhatIfError: `provider` is not configured, or `--turns` is malformed.
    """
    from lynkr.system import make_adapter
    backend = settings.providers.backends.get(provider)
    if backend is None:
        configured = ", ".join(sorted(settings.providers.backends)) or "none"
        raise WhatIfError(f"provider {provider!r} is not configured (configured: {configured})")
    adapter = make_adapter(backend, settings.providers)
    low, high = parse_turns(turns)
    rows, failed = [], False
    with httpx.Client(timeout=_TIMEOUT) as client:
        for turn in recorded_turns(events):
            number = turn.started.turn
            if not low <= number <= high:
                continue
            body = {k: v for k, v in request_body(recorder, turn.started).items()
                    if k != "stream"}
            backend_model, _ = settings.providers.models.resolve(turn.started.model)
            upstream = adapter.build(body, backend_model, turn.started.headers or {})
            message, error, latency = _send(adapter, upstream, client, body)
            failed = failed or error is not None
            usage = {k: v for k, v in ((message or {}).get("usage") or {}).items()
                     if isinstance(v, int)}
            ref = None
            blobs = []
            if message is not None:
                ref, data = make_blob(message)
                blobs.append((ref, data))
            recorder.append(f"whatif-{session}", ANY_VERSION, [WhatIfAnswered(
                session_id=session, turn=number, provider=provider,
                backend_model=backend_model, message=ref, error=error, usage=usage,
                latency_ms=round(latency, 3))], blobs=blobs)
            rows.append({"turn": number, "recorded": _recorded(recorder, settings, turn.end),
                         "whatif": {**answer_summary(message, usage, latency, _cost(
                             settings, backend_model, provider, usage)), "error": error,
                             "provider": provider}})
    if as_json:
        print(json.dumps({"session_id": session, "provider": provider, "turns": rows},
                         indent=2))
    else:
        for row in rows:
            _print_row(row)
    return 1 if failed else 0


def _cost(settings: Settings, model: str, provider: str | None,
          usage: Mapping[str, int]) -> float | None:
    price = settings.prices.price(model, provider)
    return None if price is None else price.cost(usage)


def _recorded(recorder: Recorder, settings: Settings, end: Any) -> dict[str, Any]:
    if not isinstance(end, ModelResponded):
        return {**answer_summary(None, {}, 0.0, None),
                "error": "no answer" if end is None else type(end).__name__,
                "provider": getattr(end, "provider", None)}
    message = thaw(recorder.load_blob(end.message))
    model = str(message.get("model", ""))
    return {**answer_summary(message, end.usage, end.latency_ms,
                             _cost(settings, model, end.provider, end.usage)),
            "error": None, "provider": end.provider}


_FIELDS = ("provider", "stop_reason", "input_tokens", "output_tokens", "latency_ms",
           "cost_usd", "tool_calls", "text", "error")


def _print_row(row: Mapping[str, Any]) -> None:
    """One turn, recorded | what-if, a `*` on each line that differs."""
    print(f"── turn {row['turn']}")
    old, new = row["recorded"], row["whatif"]
    for name in _FIELDS:
        left, right = old.get(name), new.get(name)
        mark = " " if name == "latency_ms" or left == right else "*"
        print(f"{mark} {name:<13} {_cell(left):<40} | {_cell(right)}")


def _cell(value: Any) -> str:
    text = "-" if value is None else value if isinstance(value, str) else json.dumps(value)
    text = text.replace("\n", "⏎")
    return text if len(text) <= 40 else text[:39] + "…"
