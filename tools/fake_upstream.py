"""A scripted fake backend: OpenAI chat, Databricks and Anthropic formats, with faults.

Run it as a process::

    python tools/fake_upstream.py --port 0 [--script FILE] [--chunks N] [--no-record]

It prints `LISTENING <port>` on stdout once it accepts connections. In-process::

    fake = await nursery.start(serve_fake_upstream, script)
    fake.url, fake.port, fake.requests, fake.set_script(...)

Routes: `POST …/chat/completions` (OpenAI), `POST /serving-endpoints/<name>/invocations`
(Databricks: OpenAI body, Databricks error bodies), `POST …/v1/messages` (Anthropic and
Azure's `…/anthropic/v1/messages`), `POST …/v1/messages/count_tokens`, `GET …/models`,
and the control routes `GET /_requests` (every request received), `DELETE /_requests`
(forget them), `POST /_script` (replace the script), `GET /health`.

A script is `{"responses": [step, …]}` (or a bare list): each request takes the next
step; when the queue is empty the default reply echoes the last user message, so a
benchmark can run it unscripted. Step keys are described in `tools/fake_replies.py`.
It runs on a minimal keep-alive HTTP/1.1 server (`tools/fake_http.py`) rather than a
full ASGI stack, so it adds as little as possible to what the proxy benchmark measures.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import deque
from functools import partial
from pathlib import Path
from typing import Any

import trio

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import fake_replies as replies  # type: ignore[import-not-found,no-redef]
    from fake_http import Reply, Request, serve_http  # type: ignore[import-not-found,no-redef]
else:
    from tools import fake_replies as replies
    from tools.fake_http import Reply, Request, serve_http

__all__ = ["FakeUpstream", "main", "serve_fake_upstream"]

_JSON = [("content-type", "application/json")]
_SSE = [("content-type", "text/event-stream"), ("cache-control", "no-cache")]


def _steps(script: Any) -> list[dict[str, Any]]:
    if script is None:
        return []
    steps = script.get("responses", []) if isinstance(script, dict) else script
    if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
        raise ValueError("a script is a list of step objects or {\"responses\": [...]}")
    out: list[dict[str, Any]] = []
    for step in steps:
        out += [step] * int(step.get("times", 1))
    return out


def _json(status: int, value: Any, headers: list[tuple[str, str]] | None = None) -> Reply:
    data = json.dumps(value, separators=(",", ":")).encode()
    return Reply(status, [*_JSON, *(headers or [])], data)


class FakeUpstream:
    """The request handler: records requests, answers from the script queue or the default."""

    def __init__(self, script: Any = None, *, chunks: int = 10, record: bool = True) -> None:
        self.chunks = chunks
        self.record = record
        self.requests: deque[dict[str, Any]] = deque(maxlen=10_000)
        self.queue: deque[dict[str, Any]] = deque(_steps(script))
        self.port = 0

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`."""
        return f"http://127.0.0.1:{self.port}"

    def set_script(self, script: Any) -> None:
        """Replace the queue of scripted steps."""
        self.queue = deque(_steps(script))

    def next_step(self) -> dict[str, Any]:
        """The next scripted step, or the default reply."""
        return self.queue.popleft() if self.queue else {"chunks": self.chunks}

    async def __call__(self, request: Request) -> Reply:
        """Answer one request."""
        body: Any = None
        if request.body:
            try:
                body = json.loads(request.body)
            except ValueError:
                body = request.body.decode("utf-8", "replace")
        if not request.path.startswith("/_") and self.record:
            self.requests.append({"method": request.method, "path": request.path,
                                  "query": request.query, "headers": request.headers,
                                  "body": body})
        return await self._route(request.method, request.path, body)

    async def _route(self, method: str, path: str, body: Any) -> Reply:
        if path == "/_requests":
            if method == "DELETE":
                self.requests.clear()
            return _json(200, list(self.requests))
        if path == "/_script" and method == "POST":
            try:
                self.set_script(body)
            except (ValueError, TypeError, KeyError) as exc:
                return _json(400, {"error": str(exc)})
            return _json(200, {"queued": len(self.queue)})
        if path in ("/health", "/"):
            return _json(200, {"status": "ok"})
        if path.endswith("/models") and method == "GET":
            return _json(200, {"object": "list", "data": [
                {"id": "fake-model", "object": "model", "owned_by": "fake"}]})
        if method != "POST" or not isinstance(body, dict):
            return _json(400 if method == "POST" else 404, {"error": "not found or bad body"})
        if path.endswith("/v1/messages/count_tokens"):
            from lynkr.providers import count_request_tokens
            return _json(200, {"input_tokens": count_request_tokens(body)})
        if path.endswith("/v1/messages"):
            return await self._answer("anthropic", body)
        if path.endswith("/chat/completions"):
            return await self._answer("openai", body)
        if path.startswith("/serving-endpoints/") and path.endswith("/invocations"):
            return await self._answer("databricks", body)
        return _json(404, {"error": f"no route for {path}"})

    async def _answer(self, fmt: str, body: dict[str, Any]) -> Reply:
        step = self.next_step()
        if step.get("delay"):
            await trio.sleep(float(step["delay"]))
        model = str(body.get("model") or "fake-model")
        if step.get("status"):
            return self._error(fmt, step)
        if "raw_body" in step or "raw_chunks" in step:
            return self._raw(step, bool(body.get("stream")))
        text = step["text"] if "text" in step else (
            "" if step.get("tool_calls") else replies.echo_text(body))
        if not body.get("stream"):
            build = replies.anthropic_message if fmt == "anthropic" else replies.openai_completion
            return _json(200, build(step, text, model))
        frames_of = replies.anthropic_frames if fmt == "anthropic" else replies.openai_frames
        return Reply(200, list(_SSE), frames=frames_of(step, text, model),
                     frame_delay=float(step.get("chunk_delay", 0)),
                     cut=step.get("fault") == "cut")

    def _raw(self, step: dict[str, Any], stream: bool) -> Reply:
        """A recorded answer replayed verbatim: `raw_chunks` for a streaming request,
        `raw_body` for a non-streaming one (a step may hold both)."""
        if stream and "raw_chunks" in step:
            return Reply(200, list(_SSE), frames=replies.raw_frames(step["raw_chunks"]),
                         frame_delay=float(step.get("chunk_delay", 0)))
        if not stream and "raw_body" in step:
            return _json(200, step["raw_body"])
        wanted = "raw_chunks" if stream else "raw_body"
        return _json(400, {"error": {"message": f"the scripted step has no {wanted}"}})

    def _error(self, fmt: str, step: dict[str, Any]) -> Reply:
        status = int(step["status"])
        message = str(step.get("message") or f"fake upstream error {status}")
        make = {"anthropic": replies.anthropic_error, "databricks": replies.databricks_error}.get(
            fmt, replies.openai_error)
        headers = [("retry-after", str(step["retry_after"]))] if "retry_after" in step else []
        return _json(status, make(status, message), headers)


async def serve_fake_upstream(
    script: Any = None,
    *,
    port: int = 0,
    chunks: int = 10,
    record: bool = True,
    task_status: trio.TaskStatus[FakeUpstream] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve a `FakeUpstream` on 127.0.0.1:`port` until cancelled; start() gives the app."""
    app = FakeUpstream(script, chunks=chunks, record=record)
    async with trio.open_nursery() as nursery:
        app.port = await nursery.start(partial(serve_http, app, port=port))
        task_status.started(app)


def main(argv: list[str] | None = None) -> int:
    """Command line: serve until interrupted; print `LISTENING <port>` when ready."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--script", type=Path, help="JSON script file")
    parser.add_argument("--chunks", type=int, default=10, help="text pieces per default stream")
    parser.add_argument("--no-record", action="store_true", help="do not keep requests")
    args = parser.parse_args(argv)
    try:
        script = json.loads(args.script.read_text()) if args.script else None
        _steps(script)
    except (OSError, ValueError) as exc:
        print(f"fake_upstream: bad script: {exc}", file=sys.stderr)
        return 2

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            app = await nursery.start(lambda task_status: serve_fake_upstream(
                script, port=args.port, chunks=args.chunks, record=not args.no_record,
                task_status=task_status))
            print(f"LISTENING {app.port}", flush=True)

    try:
        trio.run(run)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
