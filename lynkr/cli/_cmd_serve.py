"""`lynkr serve` (start the gateway) and `lynkr config` (print the effective settings).

`serve` validates every setting first, `--host`/`--port`/`--data-dir` overriding the
environment (one line per problem, exit code 2; a non-loopback HOST is one of them), takes
the data directory's gateway lock and binds the port (either taken: one line, exit code
2), then runs the system and the HTTP server until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
from typing import Any

import structlog
import trio

from lynkr._gc import tune_gc
from lynkr.config import Settings, load_settings, mask
from lynkr.errors import StartupError
from lynkr.logs import configure_logging

__all__ = ["effective_settings", "register"]

log = structlog.get_logger()


def effective_settings(settings: Settings) -> list[tuple[str, str]]:
    """Every setting as (NAME, value) — secrets masked — in README order."""
    server, providers = settings.server, settings.providers
    res = providers.resilience
    rows: list[tuple[str, Any]] = [
        ("HOST", server.host), ("PORT", server.port), ("LYNKR_DATA_DIR", server.data_dir),
        ("WORKSPACE_ROOT", server.workspace_root), ("LOG_LEVEL", server.log_level),
        ("LOG_FORMAT", server.log_format), ("LYNKR_DURABILITY", server.durability),
        ("LYNKR_PROJECTOR", server.projector),
        ("MODEL_PROVIDER", providers.provider),
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
    rows += _tool_rows(settings)
    return [(name, "" if value is None else str(value)) for name, value in rows]


def _joined(values: Any, sep: str = ",") -> str:
    return sep.join(str(v) for v in values)


def _tool_rows(settings: Settings) -> list[tuple[str, Any]]:
    """The policy, indexer and MCP sections, in README order."""
    pol, idx, mcp = settings.policy, settings.indexer, settings.mcp
    box, restart = mcp.sandbox, mcp.restart
    return [
        ("POLICY_MAX_STEPS", pol.max_steps), ("POLICY_GIT_ALLOW_PUSH", pol.git_allow_push),
        ("POLICY_GIT_REQUIRE_TESTS", pol.git_require_tests),
        ("POLICY_GIT_TEST_COMMAND", pol.git_test_command),
        ("POLICY_GIT_TIMEOUT_MS", pol.git_timeout_ms),
        ("WORKSPACE_TEST_COMMAND", pol.test_command),
        ("WORKSPACE_TEST_TIMEOUT_MS", pol.test_timeout_ms),
        ("WORKSPACE_TEST_COVERAGE_FILES", _joined(pol.test_coverage_files)),
        ("WORKSPACE_FS_MAX_READ_BYTES", pol.fs_max_read_bytes),
        ("WORKSPACE_FS_MAX_WRITE_BYTES", pol.fs_max_write_bytes),
        ("WORKSPACE_FS_SEARCH_MAX_RESULTS", pol.fs_search_max_results),
        ("WEB_SEARCH_ALLOWED_HOSTS", _joined(pol.web_allowed_hosts)),
        ("WEB_FETCH_ALLOW_PRIVATE_HOSTS", _joined(pol.web_fetch_allow_private_hosts)),
        ("WEB_FETCH_MAX_BYTES", pol.web_fetch_max_bytes),
        ("WEB_FETCH_TIMEOUT_MS", pol.web_fetch_timeout_ms),
        ("WEB_FETCH_MAX_REDIRECTS", pol.web_fetch_max_redirects),
        ("WEB_FETCH_CA_BUNDLE", pol.web_fetch_ca_bundle),
        ("WEB_SEARCH_ENDPOINT", pol.web_search_endpoint),
        ("INDEXER_MAX_FILE_BYTES", idx.max_file_bytes),
        ("INDEXER_IGNORE", _joined(idx.ignore_globs)), ("INDEXER_WORKERS", idx.workers),
        ("INDEXER_CLAUDE_MD", idx.claude_md),
        ("INDEXER_VERIFY_CONTENT", idx.verify_content),
        ("MCP_SERVER_MANIFEST", mcp.manifest),
        ("MCP_MANIFEST_DIRS", _joined(mcp.manifest_dirs, ";")),
        ("MCP_PROTOCOL_MODE", mcp.protocol_mode),
        ("MCP_REQUEST_TIMEOUT", mcp.request_timeout), ("MCP_START_TIMEOUT", mcp.start_timeout),
        ("MCP_MAX_RESTARTS", restart.max_restarts), ("MCP_RESTART_WINDOW", restart.window),
        ("MCP_SANDBOX_ENABLED", box.enabled), ("MCP_SANDBOX_RUNTIME", box.runtime),
        ("MCP_SANDBOX_IMAGE", box.image), ("MCP_SANDBOX_WORKSPACE", box.workspace),
        ("MCP_SANDBOX_ALLOW_NETWORK", box.allow_network),
        ("MCP_SANDBOX_ENV_ALLOW", _joined(box.env_allow)),
        ("MCP_SANDBOX_RO_PATHS", _joined(box.ro_paths, ";")),
        ("LYNKR_ADMIN_TOKEN", mask("LYNKR_ADMIN_TOKEN", mcp.admin_token)),
    ]


def _key_name(provider: str) -> str:
    return {"databricks": "DATABRICKS_API_KEY", "azure-anthropic": "AZURE_ANTHROPIC_API_KEY",
            "openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_UPSTREAM_API_KEY"}[provider]


async def _run(settings: Settings, listener: socket.socket) -> None:
    from lynkr.http import create_app, serve_gateway
    from lynkr.system import open_system

    async with open_system(settings) as system, trio.open_nursery() as nursery:
        app = create_app(system)
        binds = await nursery.start(serve_gateway, app, listener)
        tune_gc()
        print(f"lynkr: listening on {' '.join(binds)}", file=sys.stderr, flush=True)
        log.info("gateway_listening", binds=binds, provider=settings.providers.provider,
                 configured=settings.providers.active is not None)
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                log.info("gateway_stopping", signal=signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break


def _flag_overrides(args: argparse.Namespace) -> dict[str, str]:
    """The settings `serve`'s flags set, by variable name (they win over the environment)."""
    flags = {"HOST": args.host, "PORT": args.port, "LYNKR_DATA_DIR": args.data_dir}
    return {name: str(value) for name, value in flags.items() if value is not None}


def _serve(args: argparse.Namespace) -> int:
    from lynkr._gateway_lock import hold_gateway_lock
    from lynkr.http import bind_listener

    settings = load_settings({**os.environ, **_flag_overrides(args)})
    configure_logging(settings.server.log_level, log_format=settings.server.log_format)
    server = settings.server
    try:
        with hold_gateway_lock(server.data_dir), \
                bind_listener(server.host, server.port) as listener:
            trio.run(_run, settings, listener)
    except StartupError as exc:  # the port or the data directory is taken: one line
        print(f"lynkr: {exc.message}", file=sys.stderr)
        return 2
    return 0


def _config(args: argparse.Namespace) -> int:
    settings = load_settings()
    for name, value in effective_settings(settings):
        print(f"{name}={value}")
    if settings.providers.active is None:
        print(f"# {settings.providers.missing_message()}")
    return 0


_SERVE_ENVIRONMENT = """\
environment (read from the environment, then ./.env, then lynkr.toml's [env]; the flags
above win; `lynkr config` prints every effective setting, README "Settings" explains each):
  HOST, PORT          where to listen (127.0.0.1:8080); HOST must be a loopback address
  LYNKR_DATA_DIR      event log, projections, index (./data); one gateway per directory
  WORKSPACE_ROOT      the tree the file, git, test and index tools are confined to
  MODEL_PROVIDER      databricks (default), azure-anthropic, openai or anthropic; then its
                      endpoint and key: DATABRICKS_API_BASE/_API_KEY,
                      AZURE_ANTHROPIC_ENDPOINT/_API_KEY, OPENAI_BASE_URL/_API_KEY,
                      ANTHROPIC_UPSTREAM_URL/_API_KEY
  MODEL_DEFAULT, MODEL_OPUS, MODEL_SONNET, MODEL_HAIKU
                      backend model names (unset: the client's name passes through)
  LOG_LEVEL, LOG_FORMAT
                      logging on stderr (info; auto, console or json)
  LYNKR_DURABILITY    normal or full (SQLite synchronous)
  LYNKR_PROJECTOR     process or thread (where projections are kept up to date)
  MCP_SERVER_MANIFEST, LYNKR_ADMIN_TOKEN
                      MCP servers to start; the token that opens /admin beyond loopback
"""


def register(subparsers: Any) -> None:
    """Add `serve` and `config`."""
    serve = subparsers.add_parser(
        "serve", help="start the gateway (HOST:PORT, default 127.0.0.1:8080)",
        description="Start the gateway: the event log, the actors and the HTTP API, until "
                    "SIGINT or SIGTERM.",
        epilog=_SERVE_ENVIRONMENT, formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("--host", help="bind address, loopback only (overrides HOST; "
                                      "default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port, 0 for any free one (overrides "
                                                "PORT; default 8080)")
    serve.add_argument("--data-dir", metavar="DIR", help="event log, projections and index "
                                                         "(overrides LYNKR_DATA_DIR; "
                                                         "default ./data)")
    serve.set_defaults(handler=_serve)
    config = subparsers.add_parser("config", help="print the effective settings, secrets masked")
    config.set_defaults(handler=_config)
