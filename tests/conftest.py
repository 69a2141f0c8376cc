"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator

import pykka
import pytest


@pytest.fixture(autouse=True)
def _stop_all_actors() -> Iterator[None]:
    """Stop every pykka actor a test left running, so threads never leak between tests."""
    yield
    pykka.ActorRegistry.stop_all(timeout=10)
