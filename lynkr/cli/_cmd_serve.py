"""`lynkr serve`: start the gateway (`lynkr config`, in `_cmd_config`, shows the settings).

`serve` validates every setting first, `--host`/`--port`/`--data-dir` overriding the
environment (one line per problem, exit code 2; a non-loopback HOST with LYNKR_AUTH off
is one of them; with auth on, one line says how clients authenticate), takes
the data directory's gateway lock and binds the port (either taken: one line, exit code
2), then runs the system and the HTTP server until SIGINT or SIGTERM. The first signal
drains: the port closes, `/health/ready` answers 503, requests and streams under way
get `LYNKR_SHUTDOWN_GRACE_S` to finish (their turns committed), then the system stops;
a second signal stops at once.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
from typing import TYPE_CHECKING, Any

from lynkr.errors import StartupError

if TYPE_CHECKING:
    from lynkr.config import Settings

# structlog, trio, the settings and the gateway are imported inside the handlers:
# `lynkr --help` and the other commands never pay for them (tools/bench_cli_startup.py).

__all__ = ["register"]


async def _run(settings: Settings, listener: socket.socket) -> None:
    import structlog
    import trio

    from lynkr._gc import tune_gc
    from lynkr.http import create_app
    from lynkr.system import open_system

    log = structlog.get_logger()

    async with open_system(settings) as system, trio.open_nursery() as nursery:
        app = create_app(system)
        stop = app.extensions["lynkr.draining"] = trio.Event()  # /health/ready says 503
        binds = await nursery.start(_serve_until_drained, app, listener, stop,
                                    settings.server.shutdown_grace, nursery.cancel_scope)
        tune_gc()
        # The receiver is open before the line that tells a supervisor we are up, so a
        # SIGTERM sent right after it still shuts down cleanly.
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            print(f"lynkr: {app.extensions['lynkr.auth'].describe()}", file=sys.stderr)
            print(f"lynkr: listening on {' '.join(binds)}", file=sys.stderr, flush=True)
            log.info("gateway_listening", binds=binds, provider=settings.providers.provider,
                     configured=settings.providers.active is not None)
            async for signum in signals:
                name = signal.Signals(signum).name
                if stop.is_set():  # a second signal: no more grace
                    log.warning("gateway_stopping_now", signal=name)
                    nursery.cancel_scope.cancel()
                    break
                log.info("gateway_stopping", signal=name,
                         grace_s=settings.server.shutdown_grace)
                stop.set()


async def _serve_until_drained(app: Any, listener: socket.socket, stop: Any, grace: float,
                               scope: Any, *, task_status: Any) -> None:
    """Serve until `stop` is set and the requests under way ended (or `grace` passed),
    then stop the rest of `serve` (`scope`)."""
    from lynkr.http import serve_gateway

    await serve_gateway(app, listener, stop=stop, grace=grace, task_status=task_status)
    scope.cancel()


def _flag_overrides(args: argparse.Namespace) -> dict[str, str]:
    """The settings `serve`'s flags set, by variable name (they win over the environment)."""
    flags = {"HOST": args.host, "PORT": args.port, "LYNKR_DATA_DIR": args.data_dir}
    return {name: str(value) for name, value in flags.items() if value is not None}


def _serve(args: argparse.Namespace) -> int:
    import trio

    from lynkr._gateway_lock import hold_gateway_lock
    from lynkr.config import load_settings
    from lynkr.http import bind_listener
    from lynkr.logs import configure_logging

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


_SERVE_ENVIRONMENT = """\
environment (read from the environment, then ./.env, then lynkr.toml's [env]; the flags
above win; `lynkr config` prints every effective setting, README "Settings" explains each):
  HOST, PORT          where to listen (127.0.0.1:8080); another HOST needs LYNKR_AUTH
  LYNKR_AUTH          off (loopback only), keys, jwt or keys,jwt (see `lynkr keys`)
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
    """Add `serve`."""
    serve = subparsers.add_parser(
        "serve", help="start the gateway (HOST:PORT, default 127.0.0.1:8080)",
        description="Start the gateway: the event log, the actors and the HTTP API, until "
                    "SIGINT or SIGTERM.",
        epilog=_SERVE_ENVIRONMENT, formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("--host", help="bind address (overrides HOST; default 127.0.0.1; "
                                      "a non-loopback one needs LYNKR_AUTH)")
    serve.add_argument("--port", type=int, help="TCP port, 0 for any free one (overrides "
                                                "PORT; default 8080)")
    serve.add_argument("--data-dir", metavar="DIR", help="event log, projections and index "
                                                         "(overrides LYNKR_DATA_DIR; "
                                                         "default ./data)")
    serve.set_defaults(handler=_serve)
