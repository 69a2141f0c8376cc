"""`lynkr connect`: serve this machine's files, shell and MCP servers to a gateway's sessions.

    lynkr connect --url https://gw.example --user-id ann --allowed-paths ~/proj,/tmp

The key comes from `--api-key`, `LYNKR_CONNECT_API_KEY` or the config file (the
variable or the file keep it out of `ps`). Settings and their precedence are in
`lynkr.tunnel._connector_settings`; the command rules in `lynkr.tunnel._bash_guard`.
SIGINT or SIGTERM lets the running call finish (or reports it cancelled), then the
command exits 0; a second signal cancels running calls at once. A gateway that
refuses the key ends the command with exit code 1; invalid settings with exit code 2.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lynkr.tunnel._connector import Connector
    from lynkr.tunnel._connector_settings import ConnectSettings

# trio, httpx, trio-websocket and the MCP SDK are imported inside the handler: `lynkr
# --help` and the other commands never pay for them (tools/bench_cli_startup.py).

__all__ = ["register"]


async def _run(settings: ConnectSettings) -> None:
    import trio

    from lynkr.tunnel._connector import Connector

    connector = Connector(settings)
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            await nursery.start(connector.run)
            print(f"lynkr: connect: {connector.connector_id} serving "
                  f"{', '.join(str(p) for p in settings.allowed_paths)}",
                  file=sys.stderr, flush=True)
            nursery.start_soon(_watch_signals, connector, signals, nursery)
            await connector.stopped.wait()
            nursery.cancel_scope.cancel()


async def _watch_signals(connector: Connector, signals: Any, nursery: Any) -> None:
    import structlog

    count = 0
    async for signum in signals:
        count += 1
        structlog.get_logger().info("connector_signal", signal=signal.Signals(signum).name,
                                    running=connector.running)
        connector.request_stop(now=count > 1)


def _leaf(exc: BaseException) -> BaseException:
    """The first exception inside (possibly nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    return {"url": args.url, "user_id": args.user_id, "api_key": args.api_key,
            "allowed_paths": args.allowed_paths, "mcp_manifest": args.mcp_manifest,
            "transport": args.transport, "bash_timeout": args.bash_timeout,
            "bash_cpu_seconds": args.bash_cpu_seconds, "bash_memory_mb": args.bash_memory_mb,
            "output_cap": args.output_cap, "reconnect_max": args.reconnect_max,
            "deny_commands": args.deny_command}


def _connect(args: argparse.Namespace) -> int:
    from pathlib import Path

    import trio

    from lynkr.logs import configure_logging
    from lynkr.tunnel._connector import GatewayRefusedError
    from lynkr.tunnel._connector_settings import load_connect_settings

    settings = load_connect_settings(_flags(args), os.environ,
                                     Path(args.config).expanduser() if args.config else None)
    tty = sys.stderr.isatty()
    # On a terminal the status line tells the story; only warnings interrupt it.
    configure_logging("warning" if tty else os.environ.get("LOG_LEVEL", "info"),
                      log_format=os.environ.get("LOG_FORMAT", "auto"))
    code = 0
    try:
        trio.run(_run, settings)
    except* GatewayRefusedError as group:
        print(f"lynkr: connect: {_leaf(group)}", file=sys.stderr)
        code = 1
    except* ValueError as group:  # an invalid MCP manifest
        print(f"lynkr: connect: {_leaf(group)}", file=sys.stderr)
        code = 2
    return code


_CONNECT_ENVIRONMENT = """\
every flag has a variable LYNKR_CONNECT_<FLAG> (LYNKR_CONNECT_URL, …_USER_ID, …_API_KEY,
…_ALLOWED_PATHS, …_MCP_MANIFEST, …_TRANSPORT, …_BASH_TIMEOUT, …_BASH_CPU_SECONDS,
…_BASH_MEMORY_MB, …_OUTPUT_CAP, …_RECONNECT_MAX, …_DENY_COMMANDS one regex a line) and a
key in the config file (--config, LYNKR_CONNECT_CONFIG, else ~/.config/lynkr/connect.toml;
names with _). Flags win over variables, variables over the file; deny rules add up.
"""


def register(subparsers: Any) -> None:
    """Add `connect`."""
    connect = subparsers.add_parser(
        "connect", help="serve this machine's files, shell and MCP servers to a gateway",
        description="Connect to a Lynkr gateway and run its tool calls for your sessions "
                    "here: local_read_file, local_write_file, local_list_dir, local_search, "
                    "local_bash (confined to --allowed-paths, dangerous commands refused) "
                    "and the tools of the MCP servers in --mcp-manifest.",
        epilog=_CONNECT_ENVIRONMENT, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = connect.add_argument
    add("--url", help="the gateway's base URL, e.g. https://lynkr.example:8080")
    add("--user-id", help="your user id at the gateway (the key's user)")
    add("--api-key", help="a key with the mcp-callback scope (prefer LYNKR_CONNECT_API_KEY: "
                          "a flag shows in ps)")
    add("--allowed-paths", metavar="DIR,DIR", help="directories the tools may touch "
                                                   "(comma-separated; required)")
    add("--mcp-manifest", metavar="FILE", help="a .mcp.json of local MCP servers to offer")
    add("--transport", choices=("auto", "ws", "poll"),
        help="websocket, HTTP polling, or auto (websocket, else polling; the default)")
    add("--bash-timeout", type=float, metavar="S", help="seconds before local_bash kills a "
                                                        "command's process group (30)")
    add("--bash-cpu-seconds", type=int, metavar="S", help="CPU limit of each command (60)")
    add("--bash-memory-mb", type=int, metavar="MB", help="address-space limit of each "
                                                         "process (2048)")
    add("--deny-command", action="append", metavar="REGEX",
        help="refuse commands matching REGEX (repeatable; adds to the built-in rules)")
    add("--output-cap", type=int, metavar="BYTES", help="bytes of output an answer keeps "
                                                        "(200000)")
    add("--reconnect-max", type=float, metavar="S", help="longest wait between reconnects "
                                                         "(30)")
    add("--config", metavar="FILE", help="a TOML file of these settings "
                                         "(default ~/.config/lynkr/connect.toml)")
    connect.set_defaults(handler=_connect)
