"""Access taken away, as the supervisor's page shows it: `manage.py demo` in a subprocess and
Debian's Chromium on the live page."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.demo import ROOT, TRACK_PAGE, Demo

pytestmark = pytest.mark.browser


@pytest.fixture
def page(browser: Browser, demo: Demo) -> Iterator[Page]:
    context = browser.new_context(base_url=demo.url)
    context.set_default_timeout(10_000)
    context.add_init_script(TRACK_PAGE)
    try:
        yield context.new_page()
    finally:
        context.close()


def log_in(page: Page, username: str) -> None:
    page.goto("/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "demo")
    page.click("form button[type=submit]")
    expect(page.locator("#connection")).to_have_text("live")
    page.evaluate("window.__sameDocument = true")


def in_the_demos_database(demo: Demo, code: str) -> None:
    """Run ``code`` in a shell on the demo's database, as an admin would by hand: the demo's
    daphne hears of it through no signal (another process), only its rounds of checks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    env["CALLBOARD_VAR_DIR"] = str(demo.log.parent)
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


ALICE = (
    "from django.contrib.auth.models import Group, User; "
    "alice = User.objects.get(username='alice'); "
)


def test_logging_out_in_another_tab_sends_the_page_to_the_login_page(page: Page) -> None:
    log_in(page, "alice")
    other = page.context.new_page()
    other.goto("/")

    other.click("form[action='/accounts/logout/'] button")

    page.wait_for_function("() => window.__connectionTexts.includes('Signed out')")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=(/|%2F)$"))
    expect(page.locator("input[name=username]")).to_be_visible()


def test_a_change_of_rights_is_shown_and_not_retried_and_a_reload_watches_again(
    page: Page, demo: Demo
) -> None:
    log_in(page, "alice")

    in_the_demos_database(demo, ALICE + "alice.groups.clear()")
    try:
        expect(page.locator("#connection")).to_have_text(
            "Your access changed: reload", timeout=15_000
        )
        # Told why, the page neither reloads nor opens another socket.
        page.wait_for_timeout(2_000)
        assert page.evaluate("window.__sameDocument") is True
        assert page.evaluate("window.__sockets.length") == 1

        page.click("#connection a")

        # Watching needs the Supervisor row, not a right: the reloaded page is live again.
        expect(page.locator("#connection")).to_have_text("live")
        assert page.evaluate("window.__sameDocument") is None
    finally:
        in_the_demos_database(
            demo, ALICE + "alice.groups.add(Group.objects.get(name='Supervisors'))"
        )
