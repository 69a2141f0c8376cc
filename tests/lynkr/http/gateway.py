"""Test helper: a real gateway (system + hypercorn on 127.0.0.1:0) in front of the fake upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio

from lynkr.config import Settings, load_settings
from lynkr.http import bind_listener, create_app, serve_gateway
from lynkr.system import System, open_system
from tools.fake_upstream import FakeUpstream, serve_fake_upstream

FAST_RETRIES = {"UPSTREAM_RETRY_BASE_DELAY": "0.01", "UPSTREAM_RETRY_MAX_DELAY": "0.05"}
NO_PROMPT_CACHE = {"PROMPT_CACHE_ENABLED": "false"}
"""Off unless a test turns it on (`env={"PROMPT_CACHE_ENABLED": "true"}`): many tests resend
one request and count what reached the upstream (tests/lynkr/orchestrator/test_cache.py)."""


@dataclass
class Gateway:
    """A running gateway: its URL, system, fake upstream and an HTTP client."""

    url: str
    system: System
    fake: FakeUpstream | None
    client: httpx.AsyncClient

    async def post(self, path: str, body: Any, **kwargs: Any) -> httpx.Response:
        """POST JSON to the gateway."""
        return await self.client.post(self.url + path, json=body, **kwargs)


def gateway_settings(tmp_path: Path, fake_url: str | None, provider: str = "openai",
                     env: Mapping[str, str] | None = None) -> Settings:
    """Settings for a test gateway whose backend is the fake upstream."""
    environ = {"LYNKR_DATA_DIR": str(tmp_path / "data"), "PORT": "0", **FAST_RETRIES,
               **NO_PROMPT_CACHE}
    if fake_url is not None:
        environ.update({
            "openai": {"MODEL_PROVIDER": "openai", "OPENAI_BASE_URL": f"{fake_url}/v1"},
            "databricks": {"MODEL_PROVIDER": "databricks", "DATABRICKS_API_BASE": fake_url,
                           "DATABRICKS_API_KEY": "dapi-test-secret"},
            "anthropic": {"MODEL_PROVIDER": "anthropic", "ANTHROPIC_UPSTREAM_URL": fake_url,
                          "ANTHROPIC_UPSTREAM_API_KEY": "sk-test-secret"},
            "azure-anthropic": {"MODEL_PROVIDER": "azure-anthropic",
                                "AZURE_ANTHROPIC_ENDPOINT": f"{fake_url}/anthropic/v1/messages",
                                "AZURE_ANTHROPIC_API_KEY": "az-test-secret"},
        }[provider])
    environ.update(env or {})
    return load_settings(environ, cwd=tmp_path)


@asynccontextmanager
async def running_gateway(
    tmp_path: Path, script: Any = None, *, provider: str = "openai",
    env: Mapping[str, str] | None = None, with_upstream: bool = True,
) -> AsyncIterator[Gateway]:
    """Start the fake upstream (scripted) and a gateway in front of it; stop both after."""
    async with trio.open_nursery() as nursery:
        fake = await nursery.start(serve_fake_upstream, script) if with_upstream else None
        settings = gateway_settings(tmp_path, fake.url if fake else None, provider, env)
        async with open_system(settings) as system:
            binds = await nursery.start(serve_gateway, create_app(system),
                                        bind_listener("127.0.0.1", 0))
            async with httpx.AsyncClient(timeout=30) as client:
                yield Gateway(binds[0], system, fake, client)
            nursery.cancel_scope.cancel()


async def completed_lines(logs: list[dict[str, Any]], count: int = 1) -> list[dict[str, Any]]:
    """The `request_completed` lines in `logs`, once `count` are there (the gateway logs
    each after its response's last write, so a client may see the answer first)."""
    with trio.fail_after(10):
        # capture_logs offers nothing to wait on, so poll
        while len(lines := [e for e in logs if e["event"] == "request_completed"]) < count:  # noqa: ASYNC110
            await trio.sleep(0.01)
    return lines
