"""Micro-benchmark: the OpenAI stream translator's CPU per 50-chunk stream.

    .venv/bin/python tools/bench_translator.py

Feeds the fake upstream's 50-chunk stream (`tools/fake_replies.py`) to
`OpenAIStreamTranslator` frame by frame (as reads arrive at c=1) and whole, and
prints the best of five rounds of 300 streams each.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

from fake_replies import openai_frames  # noqa: E402

from lynkr.providers import OpenAIStreamTranslator  # noqa: E402

TEXT = "The quick brown fox jumps over the lazy dog. " * 30


def run(frames: list[bytes]) -> None:
    """Translate one stream; fail loudly if it did not complete."""
    translator = OpenAIStreamTranslator(model="claude", input_tokens=10)
    for frame in frames:
        translator.feed(frame)
    translator.end()
    if translator.outcome is None or not translator.outcome.complete:
        raise SystemExit(f"the stream did not complete: {translator.outcome}")


def main() -> int:
    """Print CPU per stream, frame by frame and whole."""
    frames = openai_frames({"chunks": 50}, TEXT, "gpt-x")
    for mode, feed in (("frame by frame", frames), ("whole", [b"".join(frames)])):
        for _ in range(50):
            run(feed)
        best = float("inf")
        for _ in range(5):
            started = time.process_time()
            for _ in range(300):
                run(feed)
            best = min(best, (time.process_time() - started) / 300 * 1000)
        print(f"{mode}: {best:.3f} ms CPU per {len(frames)}-frame stream")
    return 0


if __name__ == "__main__":
    sys.exit(main())
