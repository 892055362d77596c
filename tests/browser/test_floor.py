"""Working the floor as a supervisor does: filters, sorting and search that survive a reload,
the keyboard from row to dialog to mode, new waiting calls said to screen readers, long-wait
alerts, axe-core on the live page, the dialog and the wallboard, and a 768-pixel tablet.

One demo for the module, with its random traffic stopped so that every call on screen is one
a test made."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from tests.browser.demo import (
    ACME_SALES,
    ACME_SUPPORT,
    ALICE_PHONE,
    TRACK_PAGE,
    Demo,
    _http,
    running_demo,
)
from tests.browser.test_live_calls import log_in
from tests.browser.test_wallboard import board_address, change_board, clear_calls

pytestmark = pytest.mark.browser

# Counts the tones the page starts and keeps the desktop notifications it shows, while the
# browser's own objects still do the work.
RECORD_ALERTS = """
(() => {
  window.__tones = 0;
  window.__notes = [];
  const start = OscillatorNode.prototype.start;
  OscillatorNode.prototype.start = function (...args) {
    window.__tones += 1;
    return start.apply(this, args);
  };
  const Native = window.Notification;
  if (!Native) { return; }
  window.Notification = class extends Native {
    constructor(title, options) {
      super(title, options);
      window.__notes.push({title: title, body: options.body, tag: options.tag});
    }
  };
  Object.defineProperty(window.Notification, "permission", {get: () => Native.permission});
  window.Notification.requestPermission = (...args) => Native.requestPermission(...args);
})();
"""
SHOWN_IDS = """() => Array.from(document.querySelectorAll("#calls-body tr.call"))
  .filter(row => !row.hidden).map(row => row.id.slice("call-".length))"""
SERIOUS = ("serious", "critical")


@pytest.fixture(scope="module")
def demo(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with running_demo(tmp_path_factory.mktemp("callboard-floor")) as running:
        _http("POST", f"{running.emulator_url}/_emulator/traffic", {"running": False})
        yield running


@pytest.fixture(autouse=True)
def no_calls(demo: Demo) -> None:
    clear_calls(demo)


@contextlib.contextmanager
def open_page(
    browser: Browser, demo: Demo, *, width: int = 1280, height: int = 900, alerts: bool = False
) -> Iterator[Page]:
    context = browser.new_context(
        base_url=demo.url,
        viewport={"width": width, "height": height},
        device_scale_factor=1,
        permissions=["notifications"] if alerts else [],
    )
    context.set_default_timeout(10_000)
    context.add_init_script(TRACK_PAGE)
    context.add_init_script(RECORD_ALERTS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser, demo: Demo) -> Iterator[Page]:
    with open_page(browser, demo) as fresh:
        yield fresh


@pytest.fixture
def admin(browser: Browser, demo: Demo) -> Iterator[Page]:
    with open_page(browser, demo) as page:
        page.goto("/admin/login/")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", "demo")
        page.click("input[type=submit]")
        expect(page.locator("#site-name")).to_be_visible()
        yield page


def call(demo: Demo, queue: str, *, caller: str | None = None, answer: bool = False) -> str:
    """A call waiting in ``queue`` (answered by a free agent if asked); its id."""
    body: dict[str, Any] = {"queue": queue, "autoAnswer": False}
    if caller:
        body["caller"] = caller
    made = _http("POST", f"{demo.emulator_url}/_emulator/calls", body)
    if answer:
        _http("POST", f"{demo.emulator_url}/_emulator/calls/{made['id']}/answer", {})
    return str(made["id"])


def caller_id(demo: Demo, call_id: str) -> str:
    """The call's caller ID as VoipNow lists it: ``Name <number>``."""
    listed = _http("GET", f"{demo.emulator_url}/_emulator/calls")
    found = next(c for c in listed if c["id"] == call_id)
    return str(found["phoneCallView"][0]["callerId"])


def shown(page: Page) -> list[str]:
    return list(page.evaluate(SHOWN_IDS))


def expect_focus(page: Page, element_id: str) -> None:
    """Wait until focus is on ``element_id``: a live update may replace the row just after a
    key is pressed, and the page then moves focus to the new row."""
    page.wait_for_function(
        "(id) => document.activeElement !== null && document.activeElement.id === id",
        arg=element_id,
        timeout=5000,
    )


def assert_no_serious_violation(page: Page, where: str) -> None:
    results = Axe().run(page)
    serious = [v for v in results.response["violations"] if v["impact"] in SERIOUS]
    assert not serious, f"{where}:\n{results.generate_report()}"


def set_long_wait(admin: Page, queue: str, seconds: str) -> None:
    admin.goto(f"/admin/calls/extension/?q={queue}")
    admin.get_by_role("link", name=queue, exact=True).click()
    admin.fill("#id_long_wait_seconds", seconds)
    admin.locator("input[name=_save]").click()
    expect(admin.locator(".messagelist .success")).to_be_visible()


def test_a_supervisor_filters_searches_sorts_and_works_the_floor_from_the_keyboard(
    page: Page, demo: Demo
) -> None:
    log_in(page, "alice")
    first = call(demo, ACME_SALES)
    talking = call(demo, ACME_SUPPORT, answer=True)
    waiting = call(demo, ACME_SUPPORT, caller="+442079460123")
    last = call(demo, ACME_SALES)
    for call_id in (first, talking, waiting, last):
        expect(page.locator(f"#call-{call_id}")).to_be_attached()
    expect(page.locator(f"#call-{talking}")).to_have_class(re.compile(r"\bstate-talking\b"))
    filters = page.locator("#call-filters")
    assert sorted(shown(page)) == sorted([first, talking, waiting, last])

    filters.get_by_label("Queue").select_option(ACME_SUPPORT)
    assert sorted(shown(page)) == sorted([talking, waiting])
    expect(page.locator("#filter-count")).to_have_text("2 of 4 calls shown")
    # Searched by number as people write it, then by the caller's name.
    filters.get_by_label("Search").fill("020 7946 0123")
    assert shown(page) == [waiting]
    filters.get_by_label("Search").fill(caller_id(demo, talking).split(" <")[0].lower())
    assert talking in shown(page)
    filters.get_by_label("Search").fill("")
    filters.get_by_label("Sort").select_option("talk")
    assert shown(page)[0] == talking
    filters.get_by_label("Sort").select_option("wait")
    # The waiting caller overtakes the one answered at once as soon as a second has passed.
    page.wait_for_function(f"() => ({SHOWN_IDS})()[0] === {waiting!r}")

    page.reload()
    expect(page.locator("#connection")).to_have_text("live")
    expect(filters.get_by_label("Queue")).to_have_value(ACME_SUPPORT)
    expect(filters.get_by_label("Sort")).to_have_value("wait")
    expect(page.locator(f"#call-{first}")).to_be_hidden()
    page.wait_for_function(f"() => ({SHOWN_IDS})().join() === {f'{waiting},{talking}'!r}")

    # A new caller in the queue filtered on is said once; what happens to it later is not.
    newcomer = call(demo, ACME_SUPPORT)
    announcer = page.locator("#announcer")
    expect(announcer).to_have_attribute("aria-live", "polite")
    expect(announcer).to_have_text(f"New call waiting in Support: {caller_id(demo, newcomer)}")
    announcer.evaluate("el => { el.textContent = ''; }")
    _http("POST", f"{demo.emulator_url}/_emulator/calls/{newcomer}/answer", {})
    expect(page.locator(f"#call-{newcomer}")).to_have_class(re.compile(r"\bstate-talking\b"))
    expect(announcer).to_have_text("")
    demo.hang_up(newcomer)
    expect(page.locator(f"#call-{newcomer}")).to_have_count(0)

    # The keyboard: j and k move, and the row shows it.
    page.keyboard.press("j")
    expect_focus(page, f"call-{waiting}")
    row = page.locator(f"#call-{waiting}")
    expect(row).to_have_class(re.compile(r"\bcurrent\b"))
    assert row.evaluate("el => getComputedStyle(el).outlineStyle") == "solid"
    page.keyboard.press("ArrowDown")
    expect_focus(page, f"call-{talking}")
    page.keyboard.press("k")
    expect_focus(page, f"call-{waiting}")

    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name=re.compile(f"Join call {waiting}"))
    expect(dialog).to_be_visible()
    assert page.evaluate("document.activeElement.closest('dialog') !== null")
    for _ in range(12):  # round and round, never out of the dialog
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.closest('dialog#barge-dialog') !== null")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect_focus(page, f"call-{waiting}")

    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    page.keyboard.press("l")
    expect(dialog.locator("input[name=mode][value=listen]")).to_be_checked()
    page.keyboard.press("w")
    expect(dialog.locator("input[name=mode][value=whisper]")).to_be_checked()
    # Letters typed in a field are the field's.
    caller_field = dialog.get_by_label("Caller ID")
    caller_field.focus()
    page.keyboard.type("Bob")
    expect(caller_field).to_have_value("Bob")
    expect(dialog.locator("input[name=mode][value=whisper]")).to_be_checked()
    caller_field.fill("")
    dialog.locator("input[name=mode][value=whisper]").focus()
    page.keyboard.press("L")
    expect(dialog.locator("input[name=mode][value=listen]")).to_be_checked()
    dialog.get_by_role("button", name="Ring my phone").press("Enter")
    expect(page.locator("#barge-result")).to_have_text(
        f"{ALICE_PHONE} is ringing: pick up to listen."
    )
    assert page.evaluate("document.activeElement.closest('dialog') !== null")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect_focus(page, f"call-{waiting}")
    # The phone picks up and joins the call as one more leg, listening.
    expect(row.locator("li[data-view-id]")).to_have_count(2)


def test_a_caller_waiting_past_the_queues_threshold_is_flagged_and_alerted_once(
    browser: Browser, demo: Demo, admin: Page
) -> None:
    set_long_wait(admin, ACME_SALES, "2")
    try:
        with open_page(browser, demo, alerts=True) as page:
            log_in(page, "alice")
            page.get_by_label("play a sound").check()
            page.get_by_label("notify the desktop").check()
            expect(page.get_by_label("notify the desktop")).to_be_checked()
            assert page.evaluate("window.__tones") == 2  # the sound it will make, once

            waiting = call(demo, ACME_SALES)
            talking = call(demo, ACME_SALES, answer=True)
            elsewhere = call(demo, ACME_SUPPORT)
            row = page.locator(f"#call-{waiting}")
            expect(row).to_have_attribute("data-long-wait", "2")
            expect(row).to_have_class(re.compile(r"\blong-wait\b"))
            expect(row.locator(".long-wait-flag")).to_have_text("long wait")
            # Ticks later, still one alert.
            page.wait_for_function(
                f"() => Date.now() - Date.parse(document.getElementById('call-{waiting}')"
                ".dataset.arrived) > 5000"
            )
            [note] = page.evaluate("window.__notes")
            assert note["title"] == "Long wait in Sales"
            assert note["tag"] == f"callboard-long-wait-call-{waiting}"
            assert note["body"] == f"{caller_id(demo, waiting)} has waited {note['body'][-4:]}"
            assert re.fullmatch(r"0:0[2-4]", note["body"][-4:])
            assert page.evaluate("window.__tones") == 4
            for other in (talking, elsewhere):
                expect(page.locator(f"#call-{other}")).not_to_have_class(re.compile("long-wait"))
            assert_no_serious_violation(page, "the live page with a long wait")

            page.reload()
            expect(page.locator("#connection")).to_have_text("live")
            expect(row).to_have_class(re.compile(r"\blong-wait\b"))
            expect(page.get_by_label("play a sound")).to_be_checked()
            expect(page.get_by_label("notify the desktop")).to_be_checked()
            assert page.evaluate("window.__notes") == []
            assert page.evaluate("window.__tones") == 0
    finally:
        set_long_wait(admin, ACME_SALES, "")


def test_the_live_page_its_dialog_and_the_wallboard_pass_axe(
    page: Page, demo: Demo, admin: Page
) -> None:
    log_in(page, "alice")
    waiting = call(demo, ACME_SALES)
    call(demo, ACME_SUPPORT, answer=True)
    expect(page.locator(f"#call-{waiting}")).to_be_visible()
    page.keyboard.press("j")
    assert_no_serious_violation(page, "the live page")

    page.keyboard.press("Enter")
    expect(page.locator("dialog#barge-dialog")).to_be_visible()
    assert_no_serious_violation(page, "the barge-in dialog")

    change_board(admin, "Acme floor", show_calls=True)
    page.goto(board_address(demo, "Acme"))
    expect(page.locator("#connection")).to_have_text("live")
    expect(page.locator(f"#call-{waiting}")).to_be_visible()
    assert_no_serious_violation(page, "the wallboard")
    change_board(admin, "Acme floor", show_calls=False)


def test_on_a_768_pixel_tablet_nothing_scrolls_sideways_and_controls_take_a_finger(
    browser: Browser, demo: Demo
) -> None:
    with open_page(browser, demo, width=768, height=1024) as page:
        log_in(page, "alice")
        calls = [call(demo, q, answer=a) for q in (ACME_SALES, ACME_SUPPORT) for a in (True, False)]
        for call_id in calls:
            expect(page.locator(f"#call-{call_id}")).to_be_visible()
        assert page.evaluate("document.scrollingElement.scrollWidth") <= 768

        page.locator(f"#call-{calls[0]} .barge-btn").click()
        dialog = page.locator("dialog#barge-dialog")
        expect(dialog).to_be_visible()
        assert page.evaluate("document.scrollingElement.scrollWidth") <= 768
        box = dialog.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= 768

        small = page.evaluate(
            """() => Array.from(document.querySelectorAll(
                  "#call-filters select, #call-filters input, #call-filters button, " +
                  ".barge-btn, dialog button, dialog select, dialog input"))
              .map(el => el.type === "checkbox" || el.type === "radio" ? el.closest("label") : el)
              .filter(el => el.getClientRects().length)
              .map(el => [el.outerHTML.slice(0, 60), el.getBoundingClientRect().height])
              .filter(([, height]) => height < 44)"""
        )
        assert small == []
