"""tools/replay_shapes.py: recorded provider answers through a real gateway, checked."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.processes import gateway_processes
from tools.replay_shapes import (
    DEFAULT_SAMPLES,
    Sample,
    load_samples,
    mismatches,
    replay,
    step_for,
)

ROOT = Path(__file__).resolve().parents[2]
TEXT_SAMPLE = {
    "gateway": "openai", "stream": True,
    "chunks": [{"id": "c1", "choices": [{"index": 0, "delta": {"content": "Plums ripen"},
                                         "finish_reason": None}]},
               ": keep-alive",
               {"id": "c1", "choices": [{"index": 0, "delta": {"content": " in August."},
                                         "finish_reason": "stop"}]}],
    "expect": {"text": "Plums ripen in August.", "tool_calls": [], "stop_reason": "end_turn",
               "thinking": None},
}


def _sample(**changes: object) -> Sample:
    fields = {"name": "s", "gateway": "openai", "stream": True, "chunks": [], "body": None,
              "tools": [], "expect": {}}
    return Sample(**{**fields, **changes})  # type: ignore[arg-type]


def test_a_stream_without_done_gets_it_back():
    """Chunk files that kept JSON payloads only are replayed with a final [DONE]."""
    step = step_for(_sample(chunks=[{"choices": []}]))
    assert step == {"raw_chunks": [{"choices": []}, "[DONE]"]}


def test_a_stream_with_done_is_replayed_as_recorded():
    """A recorded [DONE] is not doubled."""
    assert step_for(_sample(chunks=[": c", "[DONE]"])) == {"raw_chunks": [": c", "[DONE]"]}


def test_a_body_sample_replays_its_body():
    """A non-streaming sample becomes a raw_body step."""
    assert step_for(_sample(stream=False, body={"id": "x"})) == {"raw_body": {"id": "x"}}


def test_mismatches_name_each_field_that_differs():
    """Text, tool calls, stop reason and thinking are compared; null thinking means none."""
    got = {"text": "a", "tool_calls": [], "stop_reason": "end_turn", "thinking": None}
    assert mismatches({"text": "a", "tool_calls": None, "stop_reason": "end_turn",
                       "thinking": None}, got) == []
    problems = mismatches({"text": "b", "tool_calls": [{"name": "t", "input": {}}],
                           "stop_reason": "tool_use", "thinking": "hm"}, got)
    assert [p.split(":")[0] for p in problems] == ["text", "tool_calls", "stop_reason",
                                                   "thinking"]


def test_a_file_that_is_not_a_sample_is_refused(tmp_path):
    """load_samples names the file that lacks a gateway, expect or answer."""
    (tmp_path / "odd.json").write_text('{"gateway": "openai"}')
    with pytest.raises(ValueError, match=r"odd\.json"):
        load_samples(tmp_path)


@pytest.fixture(scope="module")
def gateways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[str, str]]]:
    """A fake upstream and `lynkr serve` per backend, shared by this module's replays."""
    with gateway_processes(tmp_path_factory.mktemp("openai"), provider="openai") as openai, \
            gateway_processes(tmp_path_factory.mktemp("dbx"), provider="databricks") as dbx:
        yield {"openai": (openai["url"], openai["fake"]),
               "databricks": (dbx["url"], dbx["fake"])}


@pytest.mark.slow
def test_every_recorded_provider_answer_comes_out_intact(gateways):
    """Each sample of ../shared/provider-shapes keeps its text, tool calls, stop reason
    and thinking through the gateway."""
    if not DEFAULT_SAMPLES.is_dir():
        pytest.skip(f"no provider-shapes samples at {DEFAULT_SAMPLES} (reference data kept "
                    "outside the repository)")
    samples = load_samples(DEFAULT_SAMPLES)
    out = io.StringIO()
    failed = replay(samples, gateways, out=out)
    assert failed == 0, out.getvalue()
    assert out.getvalue().endswith(f"{len(samples)}/{len(samples)} samples pass\n")


@pytest.mark.slow
def test_the_command_exits_1_and_names_a_sample_that_does_not_match(gateways, tmp_path):
    """A sample whose expectation differs from what arrives fails the run, by name."""
    (tmp_path / "good.json").write_text(json.dumps(TEXT_SAMPLE))
    wrong = {**TEXT_SAMPLE, "expect": {**TEXT_SAMPLE["expect"], "text": "Plums ripen in May."}}
    (tmp_path / "wrong.json").write_text(json.dumps(wrong))
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "replay_shapes.py"), "--samples", str(tmp_path),
         "--openai", *gateways["openai"]], capture_output=True, text=True, timeout=60,
        check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "ok   good (openai, stream)"
    assert lines[1] == "FAIL wrong (openai, stream)"
    assert "expected \"Plums ripen in May.\", got \"Plums ripen in August.\"" in lines[2]
    assert lines[-1] == "1/2 samples pass"
