"""`lynkr serve` (start the gateway) and `lynkr config` (print the effective settings).

`serve` validates every setting first (one line per problem, exit code 2), refuses a
non-loopback HOST (API keys / JWT are not implemented yet, and Lynkr can run tools on
this machine), then runs the system and the HTTP server until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import ipaddress
import signal
import sys
from typing import Any

import structlog
import trio

from lynkr.config import Settings, load_settings, mask
from lynkr.errors import ConfigError
from lynkr.logs import configure_logging

__all__ = ["effective_settings", "is_loopback", "register"]

log = structlog.get_logger()


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def effective_settings(settings: Settings) -> list[tuple[str, str]]:
    """Every setting as (NAME, value) — secrets masked — in README order."""
    server, providers = settings.server, settings.providers
    res = providers.resilience
    rows: list[tuple[str, Any]] = [
        ("HOST", server.host), ("PORT", server.port), ("LYNKR_DATA_DIR", server.data_dir),
        ("WORKSPACE_ROOT", server.workspace_root), ("LOG_LEVEL", server.log_level),
        ("LYNKR_DURABILITY", server.durability), ("MODEL_PROVIDER", providers.provider),
    ]
    for backend in providers.backends.values():
        rows += [(f"{backend.name} endpoint", backend.url),
                 (f"{backend.name} key", mask(_key_name(backend.name), backend.api_key))]
    rows += [
        ("MODEL_DEFAULT", providers.models.default), ("MODEL_OPUS", providers.models.opus),
        ("MODEL_SONNET", providers.models.sonnet), ("MODEL_HAIKU", providers.models.haiku),
        ("MODEL_MAX_TOKENS", providers.max_tokens_cap),
        ("ANTHROPIC_BETA_DROP", ",".join(providers.drop_betas)),
        ("UPSTREAM_CONNECT_TIMEOUT", res.connect_timeout),
        ("UPSTREAM_READ_TIMEOUT", res.read_timeout),
        ("UPSTREAM_MAX_RETRIES", res.max_retries),
        ("UPSTREAM_RETRY_BASE_DELAY", res.retry_base_delay),
        ("UPSTREAM_RETRY_MAX_DELAY", res.retry_max_delay),
        ("UPSTREAM_POOL_SIZE", res.pool_size),
        ("CIRCUIT_BREAKER_THRESHOLD", res.breaker_threshold),
        ("CIRCUIT_BREAKER_RESET_SECONDS", res.breaker_reset),
    ]
    return [(name, "" if value is None else str(value)) for name, value in rows]


def _key_name(provider: str) -> str:
    return {"databricks": "DATABRICKS_API_KEY", "azure-anthropic": "AZURE_ANTHROPIC_API_KEY",
            "openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_UPSTREAM_API_KEY"}[provider]


def _check_bind(settings: Settings) -> None:
    host = settings.server.host
    if not is_loopback(host):
        raise ConfigError([
            f"HOST: {host!r} is not a loopback address; binding it needs API keys or JWT, "
            "which are not configured (Lynkr can run tools on this machine). Use "
            "HOST=127.0.0.1 (with Docker: --network host)"])


async def _run(settings: Settings, ready: Any = None) -> None:
    from lynkr.http import create_app, serve_gateway
    from lynkr.system import open_system

    async with open_system(settings) as system, trio.open_nursery() as nursery:
        app = create_app(system)
        binds = await nursery.start(serve_gateway, app, settings.server.host,
                                    settings.server.port)
        print(f"lynkr: listening on {' '.join(binds)}", file=sys.stderr, flush=True)
        log.info("gateway_listening", binds=binds, provider=settings.providers.provider,
                 configured=settings.providers.active is not None)
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                log.info("gateway_stopping", signal=signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break


def _serve(args: argparse.Namespace) -> int:
    settings = load_settings()
    _check_bind(settings)
    configure_logging(settings.server.log_level)
    trio.run(_run, settings)
    return 0


def _config(args: argparse.Namespace) -> int:
    settings = load_settings()
    for name, value in effective_settings(settings):
        print(f"{name}={value}")
    if settings.providers.active is None:
        print(f"# {settings.providers.missing_message()}")
    return 0


def register(subparsers: Any) -> None:
    """Add `serve` and `config`."""
    serve = subparsers.add_parser("serve", help="start the gateway (HOST:PORT, default "
                                                "127.0.0.1:8080)")
    serve.set_defaults(handler=_serve)
    config = subparsers.add_parser("config", help="print the effective settings, secrets masked")
    config.set_defaults(handler=_config)
