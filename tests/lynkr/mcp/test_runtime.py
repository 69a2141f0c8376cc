"""The MCP runtime against the real crashy server: attach, call, crash, restart, detach."""

from __future__ import annotations

import dataclasses
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from actors import McpServerSpec
from eventstore.events.mcp import ServerExited, ServerRestarting
from eventstore.projections.mcp_catalogue import catalogue_entries, fold_mcp_catalogue
from lynkr.errors import McpError, NotFoundError, ToolError, ToolNotFoundError
from lynkr.mcp import McpRuntime, RestartSettings, mcp_call_spec, mcp_tool_specs, open_mcp
from lynkr.tools import ToolRegistry
from tests.lynkr.mcp.conftest import CRASHY, crashy_spec, fast_settings, process_alive, wait_for

pytestmark = pytest.mark.slow  # real server processes (about 1-3 s each to start)


async def test_attach_lists_every_page_of_tools(runtime: McpRuntime) -> None:
    """A paginated tools/list is followed to the last page and named mcp_<server>_<tool>."""
    view = await runtime.attach(crashy_spec())
    assert view.state == "ready"
    names = [e.name for e in runtime.entries()]
    assert names == sorted(names)
    assert {"mcp_crashy_echo", "mcp_crashy_slow", "mcp_crashy_read_file"} <= set(names)
    assert len(view.tools) > 3  # more than one page


async def test_call_answers_and_tool_errors_stay_distinct(runtime: McpRuntime) -> None:
    """A tool's isError is a result with is_error; a protocol error raises McpError."""
    await runtime.attach(crashy_spec())
    ok = await runtime.call("crashy", "echo", {"text": "hi"})
    assert (ok.is_error, ok.text()) == (False, "hi")
    failed = await runtime.call("crashy", "fail", {"message": "nope"})
    assert failed.is_error
    assert "nope" in failed.text()
    with pytest.raises(McpError, match="timed out"):  # a protocol error raises instead
        await runtime.call("crashy", "slow", {"seconds": 3}, request_timeout=0.1)


async def test_call_timeout_cancels_with_clear_error(runtime: McpRuntime) -> None:
    """A call over its timeout fails with a timeout McpError and the server stays usable."""
    await runtime.attach(crashy_spec())
    with pytest.raises(McpError, match="timed out"):
        await runtime.call("crashy", "slow", {"seconds": 5}, request_timeout=0.2)
    assert (await runtime.call("crashy", "echo", {"text": "after"})).text() == "after"


async def test_crash_restarts_after_backoff_with_events(runtime: McpRuntime, store) -> None:
    """A crashed server is restarted; the log shows exit code, stderr tail and the restart."""
    view = await runtime.attach(crashy_spec())
    first_pid = view.pid
    with pytest.raises(McpError, match="closed the connection"):
        await runtime.call("crashy", "crash", {"code": 3})
    await wait_for(lambda: runtime.server("crashy").state == "ready"
                   and runtime.server("crashy").restarts == 1)
    assert runtime.server("crashy").pid != first_pid
    assert (await runtime.call("crashy", "echo", {"text": "back"})).text() == "back"
    events = [r.event for r in await store.read_stream("mcp-crashy")]
    exited = next(e for e in events if isinstance(e, ServerExited))
    assert exited.exit_code == 3
    assert "crashing on request" in exited.stderr_tail
    assert any(isinstance(e, ServerRestarting) for e in events)
    assert runtime.server("crashy").restarts == 1


async def test_in_flight_call_fails_clearly_when_server_dies(runtime: McpRuntime,
                                                            tmp_path: Path) -> None:
    """A call running when the server crashes fails with a clear McpError; the next works."""
    await runtime.attach(crashy_spec())
    failures: list[str] = []
    started = tmp_path / "slow.started"

    async def slow_call() -> None:
        try:
            await runtime.call("crashy", "slow", {"seconds": 5, "started_file": str(started)})
        except McpError as exc:
            failures.append(exc.message)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(slow_call)
        await wait_for(started.exists)  # the server is running the call
        with pytest.raises(McpError):
            await runtime.call("crashy", "crash", {"code": 5})
    assert failures
    assert "closed the connection" in failures[0]
    await wait_for(lambda: runtime.server("crashy").state == "ready"
                   and runtime.server("crashy").restarts == 1)
    assert (await runtime.call("crashy", "echo", {"text": "x"})).text() == "x"


async def test_tool_list_change_updates_catalogue_without_restart(runtime: McpRuntime) -> None:
    """tools/list_changed makes the catalogue follow, with the same process."""
    view = await runtime.attach(crashy_spec())
    await runtime.call("crashy", "add_tool", {"name": "fresh"})
    await wait_for(lambda: "mcp_crashy_fresh" in [e.name for e in runtime.entries()])
    assert (await runtime.call("crashy", "fresh", {"text": "t"})).text() == "fresh:t"
    await runtime.call("crashy", "remove_tool", {"name": "fresh"})
    await wait_for(lambda: "mcp_crashy_fresh" not in [e.name for e in runtime.entries()])
    assert runtime.server("crashy").pid == view.pid
    assert runtime.server("crashy").restarts == 0


async def test_crash_loop_stops_at_restart_limit(runtime: McpRuntime) -> None:
    """A server that crashes on every start is given up on after max_restarts, and says so."""
    await runtime.attach(crashy_spec("loop", "--crash-on-start"), wait=False)
    await wait_for(lambda: runtime.server("loop").state == "stopped")
    view = runtime.server("loop")
    assert view.restarts == runtime.settings.restart.max_restarts
    assert "restart limit" in (view.last_reason or "")
    with pytest.raises(McpError, match=r"not ready.*restart limit"):
        await runtime.call("loop", "echo", {"text": "x"})


async def test_spawn_failure_is_given_up_at_once_and_detached(runtime: McpRuntime, store,
                                                               tmp_path: Path) -> None:
    """A command exec refuses (its #! interpreter is missing) fails the attach at once.

    Nothing stays attached, nothing is retried, the log says what happened, and the
    corrected attach under the same name succeeds straight away.
    """
    script = tmp_path / "server"
    script.write_text("#!/nonexistent/python\n")
    script.chmod(0o755)
    with trio.fail_after(5), pytest.raises(McpError, match="cannot start"):
        await runtime.attach(McpServerSpec(name="s", transport="stdio", command=(str(script),)))
    assert dict(runtime.catalogue().servers) == {}
    assert [type(r.event).__name__ for r in await store.read_stream("mcp-s")] == [
        "ServerAttached", "ServerExited", "ServerGaveUp", "ServerDetached"]
    with trio.fail_after(10):
        view = await runtime.attach(dataclasses.replace(crashy_spec(), name="s"))
    assert view.state == "ready"


async def test_detach_stops_process_and_removes_tools(runtime: McpRuntime) -> None:
    """Detach leaves no process behind and the server's tools leave the catalogue."""
    view = await runtime.attach(crashy_spec())
    assert view.pid is not None
    assert process_alive(view.pid)
    await runtime.detach("crashy")
    assert not process_alive(view.pid)
    assert runtime.entries() == ()
    with pytest.raises(NotFoundError):
        runtime.server("crashy")


async def test_reattach_after_detach_continues_the_stream(runtime: McpRuntime, store) -> None:
    """A detached name can be attached again; its stream goes on where it stopped."""
    await runtime.attach(crashy_spec())
    await runtime.detach("crashy")
    view = await runtime.attach(crashy_spec())
    assert view.state == "ready"
    types = [type(r.event).__name__ for r in await store.read_stream("mcp-crashy")]
    assert types.count("ServerAttached") == 2
    assert "ServerDetached" in types


async def test_catalogue_rebuilt_from_events_equals_live(runtime: McpRuntime, store) -> None:
    """Folding the mcp-* streams from the log gives exactly the live catalogue."""
    await runtime.attach(crashy_spec("one"))
    await runtime.attach(crashy_spec("two"))
    await runtime.call("one", "add_tool", {"name": "extra"})
    await wait_for(lambda: "mcp_one_extra" in [e.name for e in runtime.entries()])
    with pytest.raises(McpError):
        await runtime.call("two", "crash", {})
    await wait_for(lambda: runtime.server("two").restarts == 1
                   and runtime.server("two").state == "ready")
    await runtime.detach("one")
    await runtime.attach(crashy_spec("three", "--crash-on-start"), wait=False)
    await wait_for(lambda: runtime.server("three").state == "stopped")
    records = []
    for name in ("one", "two", "three"):
        records += await store.read_stream(f"mcp-{name}")
    rebuilt = fold_mcp_catalogue(sorted(records, key=lambda r: r.position))
    assert dict(rebuilt.servers) == dict(runtime.catalogue().servers)
    assert catalogue_entries(rebuilt) == runtime.entries()


async def test_streamable_http_server_attaches_lists_and_answers(runtime: McpRuntime) -> None:
    """A {type: http, url} server is reached over Streamable HTTP: listed, called, followed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = await start_http_crashy(port)
    try:
        view = await runtime.attach(McpServerSpec(name="web", transport="http",
                                                  url=f"http://127.0.0.1:{port}/mcp"))
        assert view.state == "ready", view.last_reason
        assert (await runtime.call("web", "echo", {"text": "over http"})).text() == "over http"
        await runtime.call("web", "add_tool", {"name": "late"})
        await wait_for(lambda: "mcp_web_late" in [e.name for e in runtime.entries()])
        await runtime.detach("web")
    finally:
        process.kill()
        await process.wait()


async def test_tool_specs_follow_catalogue_and_call_through(runtime: McpRuntime) -> None:
    """Per-tool specs and workspace_mcp_call run real calls; isError raises ToolError."""
    registry = ToolRegistry([mcp_call_spec(runtime)])
    registry.add_provider(lambda: mcp_tool_specs(runtime))
    assert [s.name for s in registry.specs()] == ["workspace_mcp_call"]
    await runtime.attach(crashy_spec())
    echo = registry.get("mcp_crashy_echo")
    assert echo.input_schema["required"] == ["text"]  # JSON lists, not the log's tuples
    # The catalogue does not carry MCP annotations (readOnlyHint): every MCP tool may
    # have effects, as far as an interrupted call can tell.
    assert echo.effects
    assert registry.get("workspace_mcp_call").effects
    registry.validate(echo, {"text": "v"})
    answer = await echo.handler(None, {"text": "via spec"})  # type: ignore[arg-type]
    assert answer["content"][0]["text"] == "via spec"
    via_call = await registry.get("workspace_mcp_call").handler(
        None, {"server": "crashy", "tool": "echo", "arguments": {"text": "generic"}})  # type: ignore[arg-type]
    assert via_call["content"][0]["text"] == "generic"
    with pytest.raises(ToolError, match="nope"):
        await registry.get("mcp_crashy_fail").handler(None, {"message": "nope"})  # type: ignore[arg-type]
    await runtime.detach("crashy")
    with pytest.raises(ToolNotFoundError):
        registry.get("mcp_crashy_echo")


async def start_http_crashy(port: int) -> trio.Process:
    """The crashy server on Streamable HTTP at 127.0.0.1:port, once it accepts connections."""
    process = await trio.lowlevel.open_process(
        [sys.executable, str(CRASHY), "--http", str(port)], stderr=subprocess.DEVNULL)
    try:
        with trio.fail_after(30):
            while True:
                try:
                    await (await trio.open_tcp_stream("127.0.0.1", port)).aclose()
                except OSError:
                    await trio.sleep(0.1)
                else:
                    return process
    except BaseException:
        process.kill()  # never left running when it did not come up (or we were cancelled)
        with trio.CancelScope(shield=True):
            await process.wait()
        raise


async def test_lost_http_server_is_reconnected_with_backoff(store, tmp_path) -> None:
    """A call that finds the HTTP server gone fails clearly; the supervisor reconnects later."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    policy = RestartSettings(base_delay=0.2, factor=2.0, max_delay=1.0, max_restarts=30,
                             window=60.0)
    settings = dataclasses.replace(fast_settings(), restart=policy)
    process = await start_http_crashy(port)
    try:  # around the runtime too: a failing start must not leave the server running
        async with open_mcp(settings, store, workspace=tmp_path) as rt:
            await rt.attach(McpServerSpec(name="web", transport="http",
                                          url=f"http://127.0.0.1:{port}/mcp"))
            process.kill()
            await process.wait()
            with pytest.raises(McpError, match="web"):
                await rt.call("web", "echo", {"text": "x"})
            await wait_for(lambda: rt.server("web").state != "ready")
            process = await start_http_crashy(port)
            await wait_for(lambda: rt.server("web").state == "ready", 30)
            assert (await rt.call("web", "echo", {"text": "again"})).text() == "again"
            assert rt.server("web").restarts >= 1
    finally:
        process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()


async def test_manifests_load_at_start_and_bad_ones_are_reported(store, tmp_path) -> None:
    """At start every manifest server is attached; invalid files are reported and skipped."""
    manifest = tmp_path / "one.json"
    manifest.write_text(json.dumps({"mcpServers": {
        "good": {"command": sys.executable, "args": [str(CRASHY)]},
        "bad": {"command": 42}}}))
    directory = tmp_path / "dir"
    directory.mkdir()
    (directory / "broken.json").write_text("{")
    settings = dataclasses.replace(fast_settings(), manifest=manifest,
                                   manifest_dirs=(directory,))
    async with open_mcp(settings, store, workspace=tmp_path) as rt:
        await wait_for(lambda: rt.server("good").state == "ready")
        problems = [str(p) for p in rt.problems]
        assert any("one.json" in p and "'bad'" in p for p in problems)
        assert any("broken.json" in p and "invalid JSON" in p for p in problems)
        assert sorted(rt.catalogue().servers) == ["good"]
