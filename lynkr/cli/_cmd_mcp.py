"""`lynkr mcp …`: attach, detach, list and call MCP servers of the *running* gateway.

Every command talks to the gateway's admin API (`/admin/mcp`) over HTTP: the base
URL is `--url`, else `http://HOST:PORT` from the settings; LYNKR_ADMIN_TOKEN, when
set, is sent as a bearer token.

    lynkr mcp attach MANIFEST                       # a .mcp.json file
    lynkr mcp attach --name N [--env K=V] -- CMD ARGS…
    lynkr mcp attach --name N --url http://…/mcp    # Streamable HTTP
    lynkr mcp detach N
    lynkr mcp list [--json]
    lynkr mcp call SERVER TOOL '{"arg": 1}' [--timeout S] [--json]

A server's command is resolved here, the way the user's shell would from where
`lynkr` runs (this PATH, then the directory of this Python, where `lynkr` and the
servers installed beside it live), and sent as an absolute path: the gateway's
PATH is not the user's. The chosen binary is printed on stderr.

`call` names its caller, ``cli:<os user>``, in the ``x-lynkr-caller`` header: the
gateway runs the call through its policy engine and audits it under that caller in
the session ``admin-<who>`` (see `lynkr.mcp._admin`); the session and the call's id
are printed on stderr, for `lynkr audit --session` and `lynkr transcript`.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from lynkr.errors import InvalidRequestError, LynkrError

__all__ = ["register", "resolve_command"]

# httpx and the settings are imported inside the functions that use them: `lynkr --help`
# and the other commands never pay for them (tools/bench_cli_startup.py).
_TIMEOUT = {"connect": 5.0, "read": 300.0, "write": 30.0, "pool": 5.0}  # seconds
CALLER_HEADER = "x-lynkr-caller"  # lynkr.mcp._admin.CALLER_HEADER (not imported: Quart)


def _base_url(args: argparse.Namespace) -> tuple[str, dict[str, str]]:
    from lynkr.config import load_settings

    settings = load_settings()
    token = settings.mcp.admin_token
    headers = {"authorization": f"Bearer {token}"} if token else {}
    if args.url:
        return args.url.rstrip("/"), headers
    host = settings.server.host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.server.port}", headers


def _request(args: argparse.Namespace, method: str, path: str, body: Any = None,
             extra_headers: dict[str, str] | None = None) -> Any:
    import httpx

    base, headers = _base_url(args)
    headers.update(extra_headers or {})
    try:
        response = httpx.request(method, f"{base}/admin/mcp{path}", json=body,
                                 headers=headers, timeout=httpx.Timeout(**_TIMEOUT))
    except httpx.HTTPError as exc:
        raise LynkrError(f"cannot reach the gateway at {base} ({exc}); is `lynkr serve` "
                         "running? (--url sets another address)") from exc
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code >= 400:
        message = (data or {}).get("error", {}).get("message") if isinstance(data, dict) else None
        raise LynkrError(f"{response.status_code}: {message or response.text[:200]}")
    return data


def _attach_body(args: argparse.Namespace) -> dict[str, Any]:
    if args.name:
        env = {}
        for item in args.env or []:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise InvalidRequestError(f"--env {item!r}: expected NAME=value")
            env[key] = value
        if args.server_url:
            return {"name": args.name, "type": "http", "url": args.server_url}
        if not args.target:
            raise InvalidRequestError("give the command after --: "
                                      "lynkr mcp attach --name N -- CMD ARGS…")
        return {"name": args.name, "command": resolve_command(args.target[0]),
                "args": args.target[1:], "env": env}
    if len(args.target) != 1:
        raise InvalidRequestError("give one manifest file, or --name N -- CMD ARGS…")
    path = Path(args.target[0])
    try:
        manifest = json.loads(path.read_text())
    except OSError as exc:
        raise InvalidRequestError(f"{path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise InvalidRequestError(f"{path}: invalid JSON: {exc}") from exc
    return _resolve_manifest(manifest)  # type: ignore[no-any-return]


def resolve_command(command: str) -> str:
    """`command` as the user's shell would run it from here, absolute (see module docstring).

    A name found nowhere is returned as is: the gateway refuses it with the reason.
    """
    if "/" in command:
        found: str | None = command
    else:
        found = (shutil.which(command)
                 or shutil.which(command, path=str(Path(sys.executable).parent)))
    if found is None:
        return command
    resolved = os.path.abspath(found)
    if resolved != command:
        print(f"lynkr: {command}: using {resolved}", file=sys.stderr)
    return resolved


def _resolve_manifest(manifest: Any) -> Any:
    """The manifest with every stdio server's command resolved by `resolve_command`."""
    servers = manifest.get("mcpServers") if isinstance(manifest, dict) else None
    for entry in (servers or {}).values() if isinstance(servers, dict) else ():
        if isinstance(entry, dict) and isinstance(entry.get("command"), str):
            entry["command"] = resolve_command(entry["command"])
    return manifest


def _print_servers(servers: list[dict[str, Any]]) -> None:
    for server in servers:
        reason = f"  ({server['last_reason']})" if server.get("last_reason") else ""
        print(f"{server['server']}\t{server['state']}\trestarts={server['restarts']}"
              f"\ttools={len(server['tools'])}{reason}")
        for tool in server["tools"]:
            print(f"  {tool['name']}")


def _attach(args: argparse.Namespace) -> int:
    data = _request(args, "POST", "/servers", _attach_body(args))
    _print_servers(data["servers"])
    return 0 if all(s["state"] == "ready" for s in data["servers"]) else 1


def _detach(args: argparse.Namespace) -> int:
    _request(args, "DELETE", f"/servers/{args.name}")
    print(f"detached {args.name}")
    return 0


def _list(args: argparse.Namespace) -> int:
    data = _request(args, "GET", "/servers")
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    if not data["servers"]:
        print("no MCP servers attached (lynkr mcp attach adds one)")
    _print_servers(data["servers"])
    for problem in data.get("problems", []):
        print(f"problem: {problem}", file=sys.stderr)
    return 0


def _call(args: argparse.Namespace) -> int:
    try:
        arguments = json.loads(args.arguments)
    except json.JSONDecodeError as exc:
        raise InvalidRequestError(f"arguments: invalid JSON: {exc}") from exc
    body: dict[str, Any] = {"arguments": arguments}
    if args.timeout is not None:
        body["timeout"] = args.timeout
    result = _request(args, "POST", f"/servers/{args.server}/tools/{args.tool}/call", body,
                      {CALLER_HEADER: f"cli:{getpass.getuser()}"})
    print(f"session: {result.get('session_id')} · call {result.get('tool_call_id')}",
          file=sys.stderr)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for block in result["content"]:
            print(block.get("text", json.dumps(block)))
    if result["is_error"]:
        print(f"lynkr: the tool {args.tool!r} reported an error", file=sys.stderr)
        return 1
    return 0


def register(subparsers: Any) -> None:
    """Add `mcp attach|detach|list|call`."""
    mcp = subparsers.add_parser("mcp", help="attach, detach, list and call MCP servers of the "
                                            "running gateway")
    mcp.add_argument("--url", help="the gateway's base URL (default: http://HOST:PORT)")
    sub = mcp.add_subparsers(dest="mcp_command", metavar="ACTION", required=True)
    attach = sub.add_parser("attach", help="attach a manifest, or --name N -- CMD ARGS…")
    attach.add_argument("--name", help="server name (with a command after --, or --url)")
    attach.add_argument("--env", action="append", metavar="NAME=VALUE")
    attach.add_argument("--server-url", help="Streamable HTTP endpoint of the server")
    attach.add_argument("target", nargs="*", help="MANIFEST, or the command after --")
    attach.set_defaults(handler=_attach)
    detach = sub.add_parser("detach", help="detach a server (its process is stopped)")
    detach.add_argument("name")
    detach.set_defaults(handler=_detach)
    listing = sub.add_parser("list", help="servers with state, restarts and tools")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_list)
    call = sub.add_parser("call", help="call a tool: SERVER TOOL 'JSON arguments'")
    call.add_argument("server")
    call.add_argument("tool")
    call.add_argument("arguments", nargs="?", default="{}")
    call.add_argument("--timeout", type=float)
    call.add_argument("--json", action="store_true")
    call.set_defaults(handler=_call)
