"""Who is on a call, cancel and leave, as two supervisors of Acme meet them in Chromium: each
sees the other on the call's row, only the owner of a leg gets its Leave or Cancel, and the
dialog says who is already listening."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.demo import (
    ACME_SALES,
    ALICE_PHONE,
    FOREIGN_SETTINGS,
    ROOT,
    Demo,
    _http,
    chromium,
    running_demo,
)

pytestmark = pytest.mark.browser

CAROL_PHONE = "0001*025"
MAKE_CAROL = f"""
from django.contrib.auth.models import Group, User
from calls.demo_data import SUPERVISORS_GROUP
from calls.models import Extension, Organization, Supervisor
user = User.objects.create_user("carol", password="demo", first_name="Carol")
user.groups.add(Group.objects.get(name=SUPERVISORS_GROUP))
acme = Organization.objects.get(name="Acme")
supervisor = Supervisor.objects.create(user=user, organization=acme)
supervisor.phones.set([Extension.objects.get(number="{CAROL_PHONE}")])
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The demo with a second supervisor of Acme, carol, who rings from 0001*025."""
    var_dir = tmp_path_factory.mktemp("callboard-var")
    with running_demo(var_dir) as running:
        env = {k: v for k, v in os.environ.items() if k not in FOREIGN_SETTINGS}
        env["CALLBOARD_VAR_DIR"] = str(var_dir)
        subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", MAKE_CAROL],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        yield running


@pytest.fixture(scope="module")
def browser(demo: Demo) -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@contextlib.contextmanager
def supervisor_page(browser: Browser, demo: Demo, username: str) -> Iterator[Page]:
    context = browser.new_context(base_url=demo.url, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        page.goto("/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", "demo")
        page.click("form button[type=submit]")
        expect(page.locator("#connection")).to_have_text("live")
        yield page
    finally:
        context.close()


def ring(page: Page, call_id: str, phone: str, mode: str) -> None:
    page.locator(f"tr#call-{call_id}").get_by_role("button", name="Barge in…").click()
    dialog = page.locator("dialog#barge-dialog")
    dialog.locator("select[name=send_call_to]").select_option(phone)
    dialog.locator(f"input[name=mode][value={mode}]").check()
    dialog.locator("button[type=submit]").click()


def close_dialog(page: Page) -> None:
    page.locator("dialog#barge-dialog [data-close-dialog]").click()


def test_two_supervisors_see_each_other_and_only_the_owner_may_leave(
    browser: Browser, demo: Demo, tmp_path: Path
) -> None:
    with (
        supervisor_page(browser, demo, "alice") as alice,
        supervisor_page(browser, demo, "carol") as carol,
    ):
        call = demo.start_call(ACME_SALES, answer=True)
        ring(alice, call["id"], ALICE_PHONE, "listen")
        expect(alice.locator("#barge-result")).to_have_text(
            f"{ALICE_PHONE} is ringing: pick up to listen."
        )
        expect(alice.locator("#barge-cancel button")).to_have_text("Cancel")
        close_dialog(alice)

        # The demo's phone picks up after about a second: both screens show alice listening.
        for page in (alice, carol):
            badge = page.locator(f"#call-{call['id']} li[data-supervisor=alice]")
            expect(badge).to_have_attribute("data-state", "on_call")
            expect(badge).to_have_attribute("data-mode", "listen")
            expect(badge).to_contain_text("alice · listening")
        expect(
            alice.locator(f"#call-{call['id']} li[data-supervisor=alice] button")
        ).to_be_visible()
        expect(carol.locator(f"#call-{call['id']} li[data-supervisor=alice] button")).to_be_hidden()

        # Carol's dialog says so before she joins; her phone does not answer, she cancels.
        _http("PUT", f"{demo.emulator_url}/_emulator/phones/{CAROL_PHONE}", {"answers": False})
        ring(carol, call["id"], CAROL_PHONE, "whisper")
        dialog = carol.locator("dialog#barge-dialog")
        expect(dialog.locator(".on-call-note")).to_contain_text("alice is already listening.")
        expect(carol.locator("#barge-result")).to_have_text(
            f"{CAROL_PHONE} is ringing: pick up to whisper to the agent."
        )
        ringing = alice.locator(f"#call-{call['id']} li[data-supervisor=carol]")
        expect(ringing).to_have_attribute("data-state", "ringing")
        expect(ringing.locator("button")).to_be_hidden()
        carol.locator("#barge-cancel button").click()
        expect(carol.locator("#barge-result")).to_have_text(
            f"Cancelled: {CAROL_PHONE} stops ringing."
        )
        expect(carol.locator("#barge-cancel button")).to_have_count(0)
        expect(ringing).to_have_count(0)
        close_dialog(carol)

        # Alice leaves from the row; the call goes on without her on both screens.
        alice.locator(f"#call-{call['id']} li[data-supervisor=alice]").get_by_role(
            "button", name="Leave"
        ).click()
        for page in (alice, carol):
            expect(page.locator(f"#call-{call['id']} li[data-supervisor]")).to_have_count(0)
            expect(page.locator(f"#call-{call['id']}")).to_be_visible()
        alice.screenshot(path=str(tmp_path / "left.png"))
