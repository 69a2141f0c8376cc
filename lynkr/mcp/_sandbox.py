"""Sandbox command builders: wrap an MCP server's command in bubblewrap or `docker run`.

Pure functions from settings to an argument vector and an environment; the
transport runs whatever they return. A missing runtime is an `McpError` naming the
package to install, never a silent unsandboxed start.

bubblewrap: the system directories (`/usr`, `/etc`, `/bin`, `/lib*`, `/sbin`, `/opt`
when present) and the command's own prefix (e.g. its virtualenv) read-only, a
private `/tmp`, `/proc` and `/dev`, the workspace read-only or read-write (or not at
all), extra read-only paths, no network unless allowed (`--unshare-net` leaves only
an unconfigured loopback), a new pid namespace in the transport's process group (so the
shutdown signals reach every process inside), and only
allow-listed environment variables plus the server's own.

docker: the equivalent `docker run --rm -i --read-only --tmpfs /tmp --network none`
with the workspace bind-mounted and variables passed by name (`-e NAME`), so their
values never appear on a command line.

Sandboxed or not, a server gets only the allow-listed variables of the gateway's
environment (MCP_SANDBOX_ENV_ALLOW) plus its manifest's `env`: the gateway's own
API keys never leak into MCP servers.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lynkr.errors import McpError

__all__ = ["SandboxSettings", "SandboxedCommand", "build_bwrap", "build_docker", "sandbox_command"]

_SYSTEM_DIRS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt")


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxSettings:
    """The sandbox section of `McpSettings` (MCP_SANDBOX_*)."""

    enabled: bool = False
    runtime: str = "bwrap"  # "bwrap" or "docker"
    image: str | None = None  # MCP_SANDBOX_IMAGE, docker only
    workspace: str = "ro"  # "ro", "rw" or "none"
    allow_network: bool = False
    env_allow: tuple[str, ...] = ("PATH", "HOME", "LANG", "LC_ALL", "TERM", "TZ")
    ro_paths: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True)
class SandboxedCommand:
    """What to execute, with which environment."""

    argv: tuple[str, ...]
    env: Mapping[str, str]


def _allowed_env(settings: SandboxSettings, base: Mapping[str, str],
                 own: Mapping[str, str]) -> dict[str, str]:
    env = {name: base[name] for name in settings.env_allow if name in base}
    env.update(own)
    return env


def _command_prefix(command: str, env: Mapping[str, str]) -> list[Path]:
    """Read-only paths the command needs: its prefix (`…/bin/x` → `…`) and its real target's."""
    found = shutil.which(command, path=env.get("PATH")) or command
    paths = []
    for candidate in {Path(found).absolute(), Path(found).resolve()}:
        parent = candidate.parent
        paths.append(parent.parent if parent.name == "bin" else parent)
    return paths


def build_bwrap(
    argv: Sequence[str], settings: SandboxSettings, *, workspace: Path,
    env: Mapping[str, str], base_env: Mapping[str, str], bwrap: str = "bwrap",
) -> SandboxedCommand:
    """The bubblewrap command for `argv` (see module docstring)."""
    # No --die-with-parent: its PDEATHSIG follows the *thread* that spawned bwrap, and trio
    # spawns from worker threads that retire when idle, which SIGKILLed healthy servers. No
    # --new-session: it would move the sandbox out of the process group the transport signals
    # on shutdown. The server has no controlling terminal anyway (start_new_session), and
    # with --unshare-pid, killing the namespace's init kills everything inside it.
    args = [bwrap, "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if not settings.allow_network:
        args.append("--unshare-net")
    for directory in _SYSTEM_DIRS:
        path = Path(directory)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), directory]
        elif path.exists():
            args += ["--ro-bind", directory, directory]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    system = tuple(Path(d) for d in _SYSTEM_DIRS)
    extra = [*_command_prefix(argv[0], {**base_env, **env}), *settings.ro_paths]
    for path in sorted(set(extra)):
        if not any(path == s or s in path.parents for s in system) and path.exists():
            args += ["--ro-bind", str(path), str(path)]
    if settings.workspace != "none":
        flag = "--bind" if settings.workspace == "rw" else "--ro-bind"
        args += [flag, str(workspace), str(workspace), "--chdir", str(workspace)]
    else:
        args += ["--chdir", "/"]
    args += ["--", *argv]
    return SandboxedCommand(tuple(args), _allowed_env(settings, base_env, env))


def build_docker(
    argv: Sequence[str], settings: SandboxSettings, *, workspace: Path, name: str,
    env: Mapping[str, str], base_env: Mapping[str, str], docker: str = "docker",
) -> SandboxedCommand:
    """The `docker run` command for `argv` (see module docstring).

    Raises:
        McpError: MCP_SANDBOX_IMAGE is not set.
    """
    if not settings.image:
        raise McpError("MCP_SANDBOX_RUNTIME=docker needs MCP_SANDBOX_IMAGE (the image to run "
                       "MCP servers in)")
    passed = _allowed_env(settings, base_env, env)
    args = [docker, "run", "--rm", "-i", "--init", "--read-only", "--tmpfs", "/tmp",
            "--name", f"lynkr-mcp-{name}", "--network",
            "bridge" if settings.allow_network else "none"]
    if settings.workspace != "none":
        mode = "rw" if settings.workspace == "rw" else "ro"
        args += ["-v", f"{workspace}:{workspace}:{mode}", "-w", str(workspace)]
    for path in settings.ro_paths:
        args += ["-v", f"{path}:{path}:ro"]
    for key in sorted(passed):
        args += ["-e", key]
    args += [settings.image, *argv]
    return SandboxedCommand(tuple(args), passed)


def sandbox_command(
    argv: Sequence[str], settings: SandboxSettings, *, workspace: Path, name: str,
    env: Mapping[str, str], base_env: Mapping[str, str],
) -> SandboxedCommand:
    """`argv` wrapped for the configured runtime, or as is when the sandbox is off.

    Raises:
        McpError: the runtime is not installed, or is misconfigured.
    """
    if not settings.enabled:
        return SandboxedCommand(tuple(argv), _allowed_env(settings, base_env, env))
    tool = "bwrap" if settings.runtime == "bwrap" else "docker"
    found = shutil.which(tool, path=base_env.get("PATH"))
    if found is None:
        hint = ("install the Debian package `bubblewrap`" if tool == "bwrap"
                else "install Docker, or set MCP_SANDBOX_RUNTIME=bwrap")
        raise McpError(f"MCP_SANDBOX_ENABLED is on but `{tool}` is not on PATH ({hint}); "
                       f"refusing to start MCP server {name!r} unsandboxed")
    if tool == "bwrap":
        return build_bwrap(argv, settings, workspace=workspace, env=env, base_env=base_env,
                           bwrap=found)
    return build_docker(argv, settings, workspace=workspace, name=name, env=env,
                        base_env=base_env, docker=found)
