"""The session viewer in a real headless browser (Debian's chromium, driven by Playwright).

One gateway with a recorded agent-loop session (a server tool call, then a policy deny at
the step limit) and a user message carrying markup; the browser reaches the session by
keyboard, sees the tool call and the deny, watches a new turn arrive live, and never
leaves loopback. Screenshots go to `test-artifacts/` (git-ignored).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import trio

from tests.lynkr.http.gateway import running_gateway

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
SESSION = "ui-loop"
XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2"> plan it'
BASH = {"name": "Bash", "description": "Run a command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}
ASK = {"model": "claude-sonnet-4-6", "max_tokens": 256, "tools": [BASH],
       "messages": [{"role": "user", "content": XSS}]}
CREATE = {"name": "workspace_task_create", "arguments": {"title": "release notes"},
          "id": "toolu_ui"}
TIMEOUT_MS = 10_000

pytestmark = pytest.mark.slow


def _chromium() -> Any:
    """Playwright's sync API, or a failure that says what to install (never a skip)."""
    if not CHROMIUM.exists():
        pytest.fail("the viewer's browser tests need Debian's chromium at /usr/bin/chromium: "
                    "apt-get install -y chromium (.ci/run installs it)")
    from playwright.sync_api import sync_playwright
    return sync_playwright


def _drive(url: str, send_turn: Any) -> dict[str, Any]:
    """Everything the browser does, on a worker thread (Playwright's sync API)."""
    ARTIFACTS.mkdir(exist_ok=True)
    seen: dict[str, Any] = {"requests": []}
    with _chromium()() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            page.on("request", lambda request: seen["requests"].append(request.url))
            page.goto(f"{url}/ui")
            page.wait_for_selector("a.session-link")
            page.screenshot(path=str(ARTIFACTS / "viewer-sessions.png"), full_page=True)
            for _ in range(30):  # keyboard only: Tab until the session link has focus
                page.keyboard.press("Tab")
                if page.evaluate("document.activeElement.classList.contains('session-link')"):
                    break
            seen["focused"] = page.evaluate("document.activeElement.textContent")
            page.keyboard.press("Enter")
            page.wait_for_selector("#timeline li[data-kind='tool_result']")
            seen["tool_results"] = page.locator("#timeline li[data-kind='tool_result']") \
                .all_inner_texts()
            seen["denies"] = page.locator("#timeline li.status-deny").all_inner_texts()
            seen["user_text"] = page.locator("article.role-user").first.inner_text()
            seen["injected"] = page.evaluate(
                "[window.__xss, document.querySelectorAll('#conversation script, "
                "#conversation img').length]")
            page.screenshot(path=str(ARTIFACTS / "viewer-session.png"), full_page=True)
            page.wait_for_selector("#live:text-is('live')")  # the page's CSP forbids eval
            turns = page.locator("#timeline li[data-kind='turn']").count()
            send_turn()
            page.locator("#timeline li[data-kind='turn']").nth(turns).wait_for()
            seen["fresh"] = page.locator("#timeline li.fresh").count()
            summary = page.locator("details.tool-use summary").first  # the client's Bash call
            summary.focus()
            page.keyboard.press("Enter")
            seen["tool_open"] = page.locator("details.tool-use").first.get_attribute("open")
            seen["tool_text"] = page.locator("details.tool-use pre").first.inner_text()
            page.screenshot(path=str(ARTIFACTS / "viewer-live.png"), full_page=True)
            page.set_viewport_size({"width": 380, "height": 800})
            seen["narrow_overflow"] = page.evaluate(
                "document.documentElement.scrollWidth > window.innerWidth + 1")
            page.screenshot(path=str(ARTIFACTS / "viewer-narrow.png"), full_page=True)
        finally:
            browser.close()
    return seen


async def test_the_viewer_shows_a_session_live_and_safely(tmp_path):
    """Keyboard to the session; tool call and deny shown; a new turn appears live; the
    markup in a message is text; nothing leaves loopback."""
    looping = {"text": "", "tool_calls": [CREATE], "times": 2}
    bash = {"name": "Bash", "arguments": {"command": "ls"}, "id": "toolu_bash"}
    script = [looping, {"text": "Second answer, **live**.", "tool_calls": [bash]}]
    env = {"LYNKR_SERVER_TOOLS": "tasks", "POLICY_MAX_STEPS": "1"}
    async with running_gateway(tmp_path, script, provider="anthropic", env=env) as gw:
        first = await gw.post("/v1/messages", ASK, headers={"x-claude-code-session-id": SESSION})
        assert first.status_code == 200, first.text

        def send_turn() -> None:
            again = {**ASK, "messages": [*ASK["messages"], first.json(),
                                         {"role": "user", "content": "and now?"}]}
            with httpx.Client(timeout=30) as client:
                response = client.post(f"{gw.url}/v1/messages", json=again,
                                       headers={"x-claude-code-session-id": SESSION})
            assert response.status_code == 200, response.text

        seen = await trio.to_thread.run_sync(_drive, gw.url, send_turn)
    assert seen["focused"] == SESSION
    assert any("workspace_task_create" in text for text in seen["tool_results"])
    assert len(seen["denies"]) == 1
    assert "workspace_task_create" in seen["denies"][0]
    assert "<script>window.__xss = 1</script>" in seen["user_text"]
    assert seen["injected"] == [None, 0]
    assert seen["tool_open"] is not None
    assert '"command": "ls"' in seen["tool_text"]
    assert seen["fresh"] >= 1
    assert not seen["narrow_overflow"]
    hosts = {urlsplit(u).hostname for u in seen["requests"]}
    assert hosts == {"127.0.0.1"}, seen["requests"]
    assert (ARTIFACTS / "viewer-session.png").stat().st_size > 0
