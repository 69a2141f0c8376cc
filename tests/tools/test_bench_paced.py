"""`tools/bench_paced.py` (`bench_proxy.py --paced`): a smoke run against the fake upstream."""

from __future__ import annotations

import trio

from tools.bench_paced import paced_table, run_paced, set_paced_script
from tools.fake_upstream import serve_fake_upstream


async def test_paced_streams_through_the_fake_upstream_all_complete():
    """Three concurrent paced streams: each one timed to its first event and its end."""
    async with trio.open_nursery() as nursery:
        fake = await nursery.start(serve_fake_upstream, None)
        await set_paced_script(fake.port, 3, 0.001)
        result = await run_paced(fake.port, "direct", 3, None, limit=30)
        nursery.cancel_scope.cancel()
    assert (result.errors, len(result.total), len(result.first_event)) == (0, 3, 3)
    assert "| 3 | direct | 0 |" in paced_table([result])


async def test_a_stream_that_ends_without_its_last_event_is_an_error():
    """An upstream answer cut short counts as an error, not as a completed stream."""
    async with trio.open_nursery() as nursery:
        fake = await nursery.start(serve_fake_upstream, {"responses": [
            {"text": "cut here", "fault": "cut", "chunks": 4}]})
        result = await run_paced(fake.port, "direct", 1, None, limit=30)
        nursery.cancel_scope.cancel()
    assert (result.errors, result.total) == (1, [])
