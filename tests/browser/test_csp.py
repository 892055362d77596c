"""The Content-Security-Policy as Chromium enforces it: the live page with its panels and the
barge-in dialog, the wallboard, the login page and the admin load and work without one
violation."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect

from tests.browser.demo import ACME_SALES, TRACK_PAGE, Demo

pytestmark = pytest.mark.browser

# Every violation the page reports, kept on window until the next page load.
WATCH_VIOLATIONS = """
(() => {
  window.__violations = [];
  document.addEventListener("securitypolicyviolation", (e) => {
    const what = `${e.effectiveDirective} blocked ${e.blockedURI || "inline"}`;
    window.__violations.push(`${what} at ${e.sourceFile}:${e.lineNumber}`);
  }, true);
})();
"""


class Watched:
    """A browser context whose pages report CSP violations, from events and the console."""

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self.console: list[str] = []

    def page(self) -> Page:
        page = self.context.new_page()
        page.on("console", self._console)
        return page

    def _console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.console.append(message.text)

    def violations(self, page: Page) -> list[str]:
        reported: list[str] = page.evaluate("window.__violations")
        return reported + self.console


@contextlib.contextmanager
def watched(browser: Browser, demo: Demo) -> Iterator[Watched]:
    context = browser.new_context(base_url=demo.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    context.add_init_script(TRACK_PAGE)
    context.add_init_script(WATCH_VIOLATIONS)
    try:
        yield Watched(context)
    finally:
        context.close()


def log_in(page: Page, path: str, username: str) -> None:
    page.goto(path)
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "demo")
    page.locator("form [type=submit]").click()


def visit(w: Watched, page: Page, path: str) -> None:
    response = page.goto(path)
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert w.violations(page) == [], path


def test_the_live_page_and_its_dialog_keep_to_the_policy(browser: Browser, demo: Demo) -> None:
    with watched(browser, demo) as w:
        page = w.page()
        response = page.goto("/accounts/login/")
        assert response is not None
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert w.violations(page) == []

        log_in(page, "/accounts/login/", "alice")
        expect(page.locator("#connection")).to_have_text("live")
        call = demo.start_call(ACME_SALES, answer=True)
        row = page.locator(f"tr#call-{call['id']}")
        expect(row).to_be_visible()
        # The panels htmx swaps in from the socket: queue cards and agents.
        expect(page.locator(f"#queues [data-queue='{ACME_SALES}']")).to_be_visible()
        expect(page.locator("#agents [data-agent]").first).to_be_visible()
        row.get_by_role("button", name="Barge in…").click()
        expect(page.locator("dialog#barge-dialog")).to_be_visible()
        # A tick of the timers, a heartbeat: whatever the page does on its own meanwhile.
        page.wait_for_timeout(1500)
        assert w.violations(page) == []
        demo.hang_up(call["id"])
        expect(row).to_have_count(0)
        assert w.violations(page) == []


def test_the_wallboard_keeps_to_the_policy(browser: Browser, demo: Demo) -> None:
    match = re.search(r"wallboard Acme: (\S+)", demo.log.read_text())
    assert match, "the demo prints each wallboard's address"
    with watched(browser, demo) as w:
        page = w.page()
        visit(w, page, match.group(1))
        expect(page.locator("#connection")).to_have_text("live")
        call = demo.start_call(ACME_SALES)
        expect(page.locator(f"[data-queue='{ACME_SALES}'] [data-metric=waiting]")).not_to_have_text(
            "0"
        )
        demo.hang_up(call["id"])
        assert w.violations(page) == []
        visit(w, page, "/wallboard/revoked-or-never-was/")


def test_the_admin_keeps_to_the_policy(browser: Browser, demo: Demo) -> None:
    with watched(browser, demo) as w:
        page = w.page()
        visit(w, page, "/admin/login/")
        log_in(page, "/admin/login/", "admin")
        expect(page.locator("#site-name")).to_be_visible()
        assert w.violations(page) == []
        # The index, a list without actions (Django writes a <style> there), a form with the
        # two-box picker and the QR code, a popup's lookup.
        for path in [
            "/admin/",
            "/admin/calls/queuecall/",
            "/admin/calls/bargeinattempt/",
            "/admin/calls/supervisor/",
            "/admin/axes/accessattempt/",
        ]:
            visit(w, page, path)
        page.goto("/admin/calls/wallboard/")
        page.get_by_role("link", name="Acme floor").click()
        expect(page.locator("img.qr-code")).to_be_visible()
        expect(page.locator("#id_queues_from")).to_be_visible()  # the picker's script ran
        assert w.violations(page) == []
        page.goto("/admin/calls/supervisor/")
        page.get_by_role("link", name=re.compile(r"^alice")).click()
        expect(page.locator("#id_phones_from")).to_be_visible()
        assert w.violations(page) == []


def test_a_violation_would_be_seen(browser: Browser, demo: Demo) -> None:
    # The watch above is only worth its silence if it hears one.
    with watched(browser, demo) as w:
        page = w.page()
        page.goto("/accounts/login/")
        page.evaluate(
            "document.body.insertAdjacentHTML('beforeend', '<p style=\"color: red\">x</p>')"
        )
        page.wait_for_function("() => window.__violations.length > 0")
        assert any("style-src" in v for v in w.violations(page))
