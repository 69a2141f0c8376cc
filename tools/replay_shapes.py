"""Replay recorded provider answers through a real `lynkr serve` and check what comes out.

Each sample in a provider-shapes directory (default `../shared/provider-shapes/samples`
beside the repository) is one answer a real OpenAI-compatible service sent: `gateway`
(`openai` or `databricks`), `stream`, `chunks` (JSON payloads, `": ..."` comment lines,
`"[DONE]"`) or `body`, `request.tools` and `expect` (`text`, `tool_calls` [{name, input}],
`stop_reason`, `thinking`). For each sample this script scripts the fake upstream
(`tools/fake_upstream.py`) to replay the answer verbatim, sends an Anthropic request with
the sample's tools through the gateway with the official `anthropic` SDK (streaming as
the sample says), and compares the message the client assembles with `expect`::

    python tools/replay_shapes.py [--samples DIR] [--only SUBSTRING]
        [--openai URL FAKE_URL] [--databricks URL FAKE_URL]

Without `--openai`/`--databricks` it starts a fake upstream and a gateway per backend
itself (`tests/e2e/processes.py`) and stops them at the end. It prints one line per
sample and a summary, and exits 1 if any sample does not match (2 if there are none).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx

REPO = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):
    sys.path.insert(0, str(REPO))

from tests.e2e.processes import gateway_processes  # noqa: E402  (after the path fix above)

__all__ = ["DEFAULT_SAMPLES", "Sample", "answer_summary", "check_sample", "load_samples",
           "main", "mismatches", "replay", "request_for", "step_for"]

DEFAULT_SAMPLES = REPO.parent / "shared" / "provider-shapes" / "samples"
GATEWAYS = ("openai", "databricks")
MODEL = "claude-sonnet-4-6"


@dataclass(frozen=True, slots=True)
class Sample:
    """One recorded answer and what a correct Anthropic message holds."""

    name: str
    gateway: str
    stream: bool
    chunks: list[Any] | None
    body: dict[str, Any] | None
    tools: list[dict[str, Any]]
    expect: dict[str, Any]


def load_samples(directory: Path, only: str = "") -> list[Sample]:
    """Every `*.json` sample in `directory` (sorted by name) whose name contains `only`.

    Raises:
        ValueError: a file is not a sample (names the file and what is missing).
    """
    samples = []
    for path in sorted(directory.glob("*.json")):
        if only not in path.stem:
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        gateway = data.get("gateway")
        if gateway not in GATEWAYS or "expect" not in data or (
                "chunks" not in data and "body" not in data):
            raise ValueError(f"{path.name}: not a sample (needs gateway, expect, chunks|body)")
        samples.append(Sample(
            name=path.stem, gateway=gateway, stream=bool(data.get("stream")),
            chunks=data.get("chunks"), body=data.get("body"),
            tools=list((data.get("request") or {}).get("tools") or []), expect=data["expect"]))
    return samples


def step_for(sample: Sample) -> dict[str, Any]:
    """The fake upstream's script step replaying `sample` verbatim.

    Chunk files that kept JSON payloads only get their final `[DONE]` back.
    """
    if sample.stream:
        chunks = list(sample.chunks or [])
        if "[DONE]" not in chunks:
            chunks.append("[DONE]")
        return {"raw_chunks": chunks}
    return {"raw_body": sample.body}


def request_for(sample: Sample) -> dict[str, Any]:
    """The Anthropic request a client would send for `sample` (without `stream`)."""
    request: dict[str, Any] = {
        "model": MODEL, "max_tokens": 4096,
        "messages": [{"role": "user", "content": "Answer the question, using a tool if needed."}],
    }
    if sample.tools:
        request["tools"] = sample.tools
    return request


def answer_summary(message: Any) -> dict[str, Any]:
    """An SDK `Message` reduced to `expect`'s shape: text, tool calls, stop reason,
    thinking (None when there is none)."""
    blocks = list(message.content)
    thinking = "".join(b.thinking for b in blocks if b.type == "thinking")
    return {
        "text": "".join(b.text for b in blocks if b.type == "text"),
        "tool_calls": [{"name": b.name, "input": b.input} for b in blocks
                       if b.type == "tool_use"],
        "stop_reason": message.stop_reason,
        "thinking": thinking or None,
    }


def mismatches(expect: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """One line per field of `expect` that `got` does not match (a missing text is "",
    missing tool calls are [], missing thinking is None)."""
    want = {"text": expect.get("text") or "", "tool_calls": expect.get("tool_calls") or [],
            "stop_reason": expect.get("stop_reason"), "thinking": expect.get("thinking") or None}
    return [f"{key}: expected {_short(value)}, got {_short(got[key])}"
            for key, value in want.items() if got[key] != value]


def _short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} chars)"


def check_sample(sample: Sample, url: str, fake: str) -> list[str]:
    """Replay `sample` through the gateway at `url` (fake upstream at `fake`); return
    the mismatches (empty: it passed). A gateway or SDK error is one mismatch."""
    httpx.post(f"{fake}/_script", json={"responses": [step_for(sample)]},
               timeout=10).raise_for_status()
    client = anthropic.Anthropic(base_url=url, api_key="x", max_retries=0, timeout=30)
    try:
        if sample.stream:
            with client.messages.stream(**request_for(sample)) as stream:
                message = stream.get_final_message()
        else:
            message = client.messages.create(**request_for(sample))
    except anthropic.APIError as exc:
        return [f"the gateway answered with an error: {type(exc).__name__}: {exc}"]
    finally:
        client.close()
    return mismatches(sample.expect, answer_summary(message))


@contextmanager
def _gateways(needed: set[str], given: dict[str, tuple[str, str]]
              ) -> Iterator[dict[str, tuple[str, str]]]:
    """(gateway URL, fake URL) per backend: the given ones, the others started here."""
    urls = dict(given)
    with ExitStack() as stack:
        for gateway in sorted(needed - set(urls)):
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="replay-")))
            state = stack.enter_context(gateway_processes(tmp, provider=gateway))
            urls[gateway] = (state["url"], state["fake"])
        yield urls


def replay(samples: Sequence[Sample], given: dict[str, tuple[str, str]] | None = None,
           out: Any = None) -> int:
    """Replay every sample, print one line each and a summary; return how many failed."""
    out = out or sys.stdout
    failed = 0
    with _gateways({s.gateway for s in samples}, given or {}) as urls:
        for sample in samples:
            problems = check_sample(sample, *urls[sample.gateway])
            failed += bool(problems)
            mode = "stream" if sample.stream else "body"
            status = "ok  " if not problems else "FAIL"
            print(f"{status} {sample.name} ({sample.gateway}, {mode})", file=out)
            for problem in problems:
                print(f"       {problem}", file=out)
    print(f"{len(samples) - failed}/{len(samples)} samples pass", file=out)
    return failed


def main(argv: list[str] | None = None) -> int:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES)
    parser.add_argument("--only", default="", help="replay samples whose name contains this")
    for gateway in GATEWAYS:
        parser.add_argument(f"--{gateway}", nargs=2, metavar=("URL", "FAKE_URL"),
                            help=f"a running {gateway} gateway and its fake upstream")
    args = parser.parse_args(argv)
    if not args.samples.is_dir():
        print(f"replay_shapes: no samples directory at {args.samples}", file=sys.stderr)
        return 2
    samples = load_samples(args.samples, args.only)
    if not samples:
        print(f"replay_shapes: no samples in {args.samples}", file=sys.stderr)
        return 2
    given = {g: tuple(getattr(args, g)) for g in GATEWAYS if getattr(args, g)}
    return 1 if replay(samples, given) else 0


if __name__ == "__main__":
    sys.exit(main())
