"""Which of Lynkr's modules one `/v1/messages` turn runs through (a script, not a test).

    .venv/bin/python tools/turn_modules.py [--stream] [--provider openai|databricks]

Starts the fake upstream and a gateway in this process, sends one warm-up turn, then
records (with a profile hook on every thread) the modules of `lynkr`, `actors` and
`eventstore` whose code runs while one more turn is served, and prints them with their
count. docs/INTERNALS.md ("A turn in N steps") is kept true with it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import trio  # noqa: E402

from lynkr.config import load_settings  # noqa: E402
from lynkr.http import bind_listener, create_app, serve_gateway  # noqa: E402
from lynkr.logs import configure_logging  # noqa: E402
from lynkr.system import open_system  # noqa: E402
from tools.fake_upstream import serve_fake_upstream  # noqa: E402

PACKAGES = ("lynkr", "actors", "eventstore")
BODY = {"model": "claude-sonnet-4-6", "max_tokens": 64,
        "messages": [{"role": "user", "content": "hello"}]}


class ModuleTrace:
    """A profile hook that notes the repository modules whose functions are called."""

    def __init__(self) -> None:
        self.modules: set[str] = set()
        self.active = False

    def hook(self, frame: FrameType, event: str, _arg: Any) -> None:
        if event != "call" or not self.active:
            return
        path = Path(frame.f_code.co_filename)
        try:
            relative = path.relative_to(REPO)
        except ValueError:
            return
        if relative.parts[0] in PACKAGES:
            self.modules.add(str(relative))

    def install(self) -> None:
        """Hook this thread and every thread started from now on (Python 3.11 has no
        hook for threads already running, so install before the system starts)."""
        sys.setprofile(self.hook)
        threading.setprofile(self.hook)

    def uninstall(self) -> None:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]


async def trace_turn(stream: bool, provider: str) -> set[str]:
    """The modules one turn (after a warm-up turn) runs through."""
    trace = ModuleTrace()
    trace.install()
    with tempfile.TemporaryDirectory() as tmp:
        async with trio.open_nursery() as nursery:
            fake = await nursery.start(serve_fake_upstream, None)
            env = {"LYNKR_DATA_DIR": tmp}  # projections in their own process, as served
            env.update({"MODEL_PROVIDER": "openai", "OPENAI_BASE_URL": f"{fake.url}/v1"}
                       if provider == "openai" else
                       {"MODEL_PROVIDER": "databricks", "DATABRICKS_API_BASE": fake.url,
                        "DATABRICKS_API_KEY": "dapi-x"})
            async with open_system(load_settings(env, cwd=tmp)) as system:
                binds = await nursery.start(serve_gateway, create_app(system),
                                            bind_listener("127.0.0.1", 0))
                headers = {"x-claude-code-session-id": "trace"}
                body = {**BODY, "stream": stream}
                async with httpx.AsyncClient(timeout=30) as client:
                    await client.post(binds[0] + "/v1/messages", json=body, headers=headers)
                    trace.active = True
                    await client.post(binds[0] + "/v1/messages", json=body, headers=headers)
                    await trio.sleep(0.2)  # the turn's last commit and log line
                    trace.active = False
                nursery.cancel_scope.cancel()
    trace.uninstall()
    return trace.modules


def main(argv: list[str] | None = None) -> int:
    """Print the modules and their count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--provider", choices=("openai", "databricks"), default="openai")
    args = parser.parse_args(argv)
    configure_logging("warning")
    modules = trio.run(trace_turn, args.stream, args.provider)
    for module in sorted(modules):
        print(module)
    print(f"# {len(modules)} modules ({'stream' if args.stream else 'json'}, {args.provider})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
