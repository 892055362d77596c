"""The product as a supervisor meets it: `manage.py demo` in a subprocess on free ports, the
emulator it starts as VoipNow, and Debian's Chromium on the live page."""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.demo import (
    ACME_SALES,
    ACME_SUPPORT,
    ALICE_PHONE,
    GLOBEX_SALES,
    README_SCREENSHOT,
    TRACK_PAGE,
    Demo,
    running_demo,
)
from tests.support.ports import port_open

pytestmark = pytest.mark.browser


@contextlib.contextmanager
def open_page(browser: Browser, demo: Demo) -> Iterator[Page]:
    context = browser.new_context(
        base_url=demo.url, viewport={"width": 1280, "height": 860}, device_scale_factor=1
    )
    context.set_default_timeout(10_000)
    context.add_init_script(TRACK_PAGE)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser, demo: Demo) -> Iterator[Page]:
    with open_page(browser, demo) as fresh:
        yield fresh


def log_in(page: Page, username: str) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "demo")
    page.click("form button[type=submit]")
    expect(page.locator("#connection")).to_have_text("live")
    # A property on window survives everything but a page load: proof that nothing reloads.
    page.evaluate("window.__sameDocument = true")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__sameDocument") is True


def test_alice_sees_her_calls_live_and_barges_in_from_her_phone(
    page: Page, demo: Demo, tmp_path: Path
) -> None:
    log_in(page, "alice")

    globex = demo.start_call(GLOBEX_SALES, answer=True)
    call = demo.start_call(ACME_SALES, answer=True)
    row = page.locator(f"tr#call-{call['id']}")
    expect(row).to_be_visible()
    expect(row.locator(".agent")).not_to_contain_text("waiting")
    # The Globex call is older than the Acme one: the watcher saw it first, and never sent it.
    expect(page.locator(f"#call-{globex['id']}")).to_have_count(0)
    assert_not_reloaded(page)

    for queue, answer in [(ACME_SUPPORT, True), (ACME_SALES, False), (ACME_SUPPORT, False)]:
        other = demo.start_call(queue, answer=answer)
        expect(page.locator(f"tr#call-{other['id']}")).to_be_visible()
    expect(page.locator(".empty-note")).to_be_hidden()
    expect(page.locator("tr.call.state-waiting").first).to_be_visible()
    talk = row.locator("td.talk .timer")
    shown = talk.inner_text()
    expect(talk).not_to_have_text(shown, timeout=3000)

    views = row.locator("li[data-view-id]")
    before = set(views.evaluate_all("els => els.map(el => el.dataset.viewId)"))
    agent_view = next(v for v in call["phoneCallView"] if v["extension"] != ACME_SALES)

    row.get_by_role("button", name="Barge in…").click()
    dialog = page.locator("dialog#barge-dialog")
    expect(dialog).to_be_visible()
    dialog.locator(f"input[name=phone_call_view_id][value='{agent_view['id']}']").check()
    dialog.locator("select[name=send_call_to]").select_option(ALICE_PHONE)
    dialog.locator("button[type=submit]").click()
    expect(page.locator("#barge-result")).to_have_text(
        f"{ALICE_PHONE} is ringing: pick up to join."
    )

    # The phone picks up after about a second; the emulator joins it to the call as a view.
    expect(views).to_have_count(len(before) + 1)
    joined = views.evaluate_all("els => els.map(el => el.dataset.viewId)")
    (new_id,) = set(joined) - before
    expect(row.locator(f"li[data-view-id='{new_id}']")).to_contain_text("on call")
    expect(row.locator(f"li[data-view-id='{new_id}']")).to_contain_text("Alice desk phone")
    expect(row.locator(f"li[data-view-id='{new_id}']")).to_have_attribute(
        "title", re.compile(re.escape(ALICE_PHONE))
    )
    expect(page.locator(f"#call-{globex['id']}")).to_have_count(0)
    assert_not_reloaded(page)

    shot = (
        README_SCREENSHOT
        if os.environ.get("CALLBOARD_UPDATE_SCREENSHOT") == "1"
        else tmp_path / "live.png"
    )
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000


def test_the_page_reconnects_by_itself_after_its_socket_closes_normally(
    page: Page, demo: Demo
) -> None:
    log_in(page, "alice")
    assert page.evaluate("window.__sockets.length") == 1

    page.evaluate("window.__sockets[0].close(1000, 'going away')")

    page.wait_for_function("() => window.__connectionTexts.includes('reconnecting…')")
    expect(page.locator("#connection")).to_have_text("live")
    texts = page.evaluate("window.__connectionTexts")
    assert texts[texts.index("reconnecting…") :][-1] == "live", texts
    assert page.evaluate("window.__sockets.length") == 2
    assert page.evaluate("window.__sockets[1].readyState") == 1

    call = demo.start_call(ACME_SALES)
    expect(page.locator(f"tr#call-{call['id']}")).to_be_visible()
    assert_not_reloaded(page)


def test_ctrl_c_stops_the_demo_and_its_emulator_while_a_supervisor_is_watching(
    browser: Browser, tmp_path: Path
) -> None:
    with running_demo(tmp_path) as demo, open_page(browser, demo) as page:
        log_in(page, "alice")

        code = demo.stop()

        log = demo.log.read_text()
        assert code != -signal.SIGKILL, f"the demo hung on Ctrl-C and was killed:\n{log[-3000:]}"
        assert log.rstrip().endswith("stopped")
        assert demo.emulator_pids() == []
        assert not port_open(demo.port)
        assert not port_open(demo.emulator_port)
        expect(page.locator("#connection")).to_have_text("reconnecting…")
        assert code == 0, f"the demo exited with {code}:\n{log[-3000:]}"


def test_the_queue_cards_show_the_figures_live(page: Page, demo: Demo) -> None:
    log_in(page, "alice")

    waiting = demo.start_call(ACME_SALES)
    talking = demo.start_call(ACME_SALES, answer=True)

    expect(page.locator(f"#call-{waiting['id']}")).to_be_visible()
    expect(page.locator(f"#call-{talking['id']}")).to_have_class(re.compile("state-talking"))
    panel = page.locator("#queues [data-queue='0001*100']")
    expect(panel.locator("h2")).to_have_text("Sales")
    at_least_one = re.compile(r"^[1-9][0-9]*$")
    expect(panel.locator("[data-metric=waiting]")).to_have_text(at_least_one)
    expect(panel.locator("[data-metric=talking]")).to_have_text(at_least_one)
    expect(panel.locator("[data-metric=answered_today]")).to_have_text(at_least_one)
    # The longest wait ticks in the browser from when the call arrived.
    expect(panel.locator("[data-metric=longest_wait]")).to_have_text(re.compile(r"^\d+:\d\d$"))


@pytest.fixture(scope="module")
def demo_on_voipnow_3(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with running_demo(tmp_path_factory.mktemp("callboard-var-3"), voipnow=3) as running:
        yield running


def test_on_voipnow_3_calls_come_and_go_live_and_listening_is_not_offered(
    browser: Browser, demo_on_voipnow_3: Demo
) -> None:
    """VoipNow 3.x: Call Events without the Answer types and without a UAPI id for inbound
    calls, collections unwrapped, an ended call answered pc_phonecall_invalid, no Monitor."""
    demo = demo_on_voipnow_3
    with open_page(browser, demo) as page:
        log_in(page, "alice")
        call = demo.start_call(ACME_SALES, answer=True)
        row = page.locator(f"tr#call-{call['id']}")
        expect(row).to_be_visible()
        expect(row.locator(".agent")).not_to_contain_text("waiting")

        row.get_by_role("button", name="Barge in…").click()
        dialog = page.locator("dialog#barge-dialog")
        expect(dialog.locator("input[name=mode][value=whisper]")).to_have_count(1)
        expect(dialog.locator("input[name=mode][value=listen]")).to_have_count(0)
        expect(dialog).to_contain_text("Listening needs VoipNow 5.6 or later")
        dialog.locator("input[name=mode][value=whisper]").check()
        dialog.locator("button[type=submit]").click()
        expect(page.locator("#barge-result")).to_have_text(
            f"{ALICE_PHONE} is ringing: pick up to whisper to the agent."
        )
        dialog.locator("[data-close-dialog]").click()

        demo.hang_up(call["id"])
        expect(row).to_have_count(0)
        expect(page.locator("#live-status")).to_have_attribute("data-state", "ok")
        assert_not_reloaded(page)
