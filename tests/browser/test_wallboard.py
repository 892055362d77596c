"""The wallboard as a TV in a call centre shows it: `manage.py demo` in a subprocess, the admin
changing and revoking wallboards, and Debian's Chromium as the TV (1920 by 1080 and 3840 by 2160),
including a compressed run of thousands of call changes to see that the page does not grow."""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.demo import (
    ACME_SALES,
    ACME_SUPPORT,
    ROOT,
    TRACK_PAGE,
    Demo,
    _http,
    chromium,
    running_demo,
)

pytestmark = pytest.mark.browser

SCREENSHOTS = {
    (1920, 1080): ROOT / "docs" / "wallboard-1080p.png",
    (3840, 2160): ROOT / "docs" / "wallboard-4k.png",
}
# Exact heap figures for the memory run, and gc() to take them after a collection.
MEMORY_ARGS = ["--enable-precise-memory-info", "--js-flags=--expose-gc"]
# Counts the rows that come and go on the page, and the messages it receives.
COUNT_CHANGES = """
(() => {
  window.__rowsAdded = 0; window.__rowsRemoved = 0; window.__messages = 0;
  document.addEventListener("htmx:wsAfterMessage", () => { window.__messages += 1; });
  document.addEventListener("DOMContentLoaded", () => {
    const board = document.getElementById("board");
    if (!board) { return; }
    const rows = nodes => Array.from(nodes).filter(n => n.nodeName === "TR").length;
    new MutationObserver(records => records.forEach(r => {
      window.__rowsAdded += rows(r.addedNodes);
      window.__rowsRemoved += rows(r.removedNodes);
    })).observe(board, {childList: true, subtree: true});
  });
})();
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium(*MEMORY_ARGS) as launched:
        yield launched


@pytest.fixture(scope="module")
def demo(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with running_demo(tmp_path_factory.mktemp("callboard-wall")) as running:
        yield running


@contextlib.contextmanager
def context_for(
    browser: Browser, demo: Demo, size: tuple[int, int] = (1920, 1080)
) -> Iterator[BrowserContext]:
    context = browser.new_context(
        base_url=demo.url,
        viewport={"width": size[0], "height": size[1]},
        device_scale_factor=1,
    )
    context.set_default_timeout(10_000)
    context.add_init_script(TRACK_PAGE)
    context.add_init_script(COUNT_CHANGES)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def screen(browser: Browser, demo: Demo) -> Iterator[Page]:
    with context_for(browser, demo) as context:
        yield context.new_page()


@pytest.fixture
def admin(browser: Browser, demo: Demo) -> Iterator[Page]:
    """The admin, logged in, in a browser of its own."""
    with context_for(browser, demo, (1280, 900)) as context:
        page = context.new_page()
        page.goto("/admin/login/")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", "demo")
        page.click("input[type=submit]")
        expect(page.locator("#site-name")).to_be_visible()
        yield page


def board_address(demo: Demo, org: str) -> str:
    match = re.search(rf"wallboard {org}: (\S+)", demo.log.read_text())
    assert match, "the demo prints each wallboard's address"
    return match.group(1)


def open_board(page: Page, address: str) -> None:
    page.goto(address)
    expect(page.locator("#connection")).to_have_text("live")
    page.evaluate("window.__sameDocument = true")


def change_board(admin: Page, name: str, **fields: Any) -> None:
    """Open the wallboard called ``name`` in the admin, set ``fields`` (a bool ticks or unticks
    a box, anything else fills a field) and save."""
    admin.goto("/admin/calls/wallboard/")
    admin.get_by_role("link", name=name).click()
    for field, value in fields.items():
        box = admin.locator(f"#id_{field}")
        if isinstance(value, bool):
            box.set_checked(value)
        else:
            box.fill(str(value))
    admin.locator("input[name=_save]").click()
    expect(admin.locator(".messagelist .success")).to_be_visible()


def fits_the_screen(page: Page) -> bool:
    return bool(
        page.evaluate(
            """() => {
              const root = document.scrollingElement;
              const inside = Array.from(document.querySelectorAll("#tiles > [data-queue]"))
                .every(t => { const r = t.getBoundingClientRect();
                              return r.bottom <= innerHeight && r.right <= innerWidth; });
              return root.scrollHeight <= innerHeight && root.scrollWidth <= innerWidth && inside;
            }"""
        )
    )


def test_the_wallboard_needs_no_login_offers_no_action_and_lists_no_calls_by_default(
    screen: Page, demo: Demo, admin: Page
) -> None:
    change_board(admin, "Acme floor", show_calls=False)  # as the demo made it
    open_board(screen, board_address(demo, "Acme"))
    call = demo.start_call(ACME_SALES)

    tiles = screen.locator("#tiles > [data-queue]")
    expect(tiles).to_have_count(2)
    assert tiles.evaluate_all("ts => ts.map(t => t.dataset.queue)") == [ACME_SALES, ACME_SUPPORT]
    expect(screen.locator("#tiles [data-queue='0001*100']")).to_contain_text("Sales")
    screen.wait_for_function("() => window.__messages > 1")
    expect(screen.locator(f"#call-{call['id']}")).to_have_count(0)
    expect(screen.locator("#calls-body")).to_have_count(0)
    for action in ("button", "form", "a", "input", "select"):
        expect(screen.locator(f"{action}:visible")).to_have_count(0)
    assert "/accounts/login/" not in screen.url
    assert fits_the_screen(screen)


def test_turned_on_in_the_admin_the_screen_lists_calls_masked_and_fills_tv_and_4k(
    browser: Browser, demo: Demo, admin: Page, tmp_path: Path
) -> None:
    address = board_address(demo, "Acme")
    with context_for(browser, demo) as context:
        screen = context.new_page()
        open_board(screen, address)

        change_board(admin, "Acme floor", show_calls=True)

        # The screen reloads by itself with the new settings, and the watcher renders masked
        # rows at once (it is told, rather than finding out within 30 s).
        expect(screen.locator("table.wall-calls")).to_be_visible()
        call = demo.start_call(ACME_SALES, answer=True)
        row = screen.locator(f"#call-{call['id']}")
        expect(row).to_be_visible(timeout=5000)
        number = call["phoneCallView"][0]["source"][0]
        masked = re.escape(number[:5]) + "•+" + re.escape(number[-4:])
        expect(row.locator(".caller")).to_have_text(re.compile(f"^{masked}$"))
        assert number not in screen.content()
    waiting = [demo.start_call(ACME_SUPPORT)["id"] for _ in range(6)]
    for size, docs_path in SCREENSHOTS.items():
        with context_for(browser, demo, size) as context:
            screen = context.new_page()
            open_board(screen, address)
            for call_id in [call["id"], *waiting]:
                expect(screen.locator(f"#call-{call_id}")).to_be_visible()
            screen.wait_for_timeout(1500)  # timers and the clock have ticked
            assert fits_the_screen(screen), size
            wanted = os.environ.get("CALLBOARD_UPDATE_SCREENSHOT") == "1"
            shot = docs_path if wanted else tmp_path / docs_path.name
            screen.screenshot(path=str(shot))
            assert shot.stat().st_size > 10_000
            eight_queues(screen)
            assert fits_the_screen(screen), size
            screen.screenshot(path=str(tmp_path / f"eight-{docs_path.name}"))


def eight_queues(screen: Page) -> None:
    """The page as a wallboard of eight queues would be served (the demo has two a company)."""
    screen.evaluate(
        """() => {
          const tiles = document.getElementById("tiles");
          const first = tiles.firstElementChild;
          for (let i = tiles.children.length; i < 8; i++) {
            const tile = first.cloneNode(true);
            tile.id = `queue-x${i}`; tile.dataset.queue = `0001*9${i}`;
            tile.querySelector("h2").textContent = `Queue ${i + 1}`;
            tiles.appendChild(tile);
          }
          tiles.dataset.count = "8";
        }"""
    )


def test_a_screen_shows_that_its_wallboard_was_revoked_and_stops(
    screen: Page, demo: Demo, admin: Page
) -> None:
    open_board(screen, board_address(demo, "Globex"))

    admin.goto("/admin/calls/wallboard/")
    admin.locator("tr", has_text="Globex floor").locator("input.action-select").check()
    admin.select_option("select[name=action]", "revoke")
    admin.locator("button[name=index]").click()
    revoked_at = time.monotonic()

    expect(screen.locator("#revoked")).to_have_text("This wallboard was revoked", timeout=1500)
    assert time.monotonic() - revoked_at < 1.5
    expect(screen.locator("#connection")).to_have_text("revoked")
    screen.wait_for_timeout(3000)
    assert screen.evaluate("window.__sockets.length") == 1  # no reconnecting
    assert screen.evaluate("window.__sameDocument") is True  # and no reloading
    screen.reload()
    expect(screen.get_by_role("alert")).to_contain_text("This wallboard was revoked")


def test_a_screen_reconnects_after_any_close_and_reloads_when_the_server_was_upgraded(
    screen: Page, demo: Demo
) -> None:
    open_board(screen, board_address(demo, "Acme"))

    screen.evaluate("window.__sockets[0].close(1000, 'going away')")
    screen.wait_for_function(
        "() => window.__sockets.length === 2 && window.__sockets[1].readyState === 1"
    )
    expect(screen.locator("#connection")).to_have_text("live")
    screen.wait_for_timeout(4000)  # longer than a reload waits
    assert screen.evaluate("window.__sameDocument") is True

    # As if this page had been served by the version before an upgrade.
    screen.evaluate("document.body.dataset.version = '0.0.1+before'")
    screen.evaluate("window.__sockets[1].close(1000, 'going away')")

    screen.wait_for_function("() => window.__sameDocument === undefined", timeout=10_000)
    expect(screen.locator("#connection")).to_have_text("live")
    assert screen.evaluate("document.body.dataset.version") != "0.0.1+before"


def test_colours_follow_the_wallboards_thresholds_and_a_queue_turning_red_chimes(
    screen: Page, demo: Demo
) -> None:
    open_board(screen, board_address(demo, "Acme"))
    screen.evaluate("document.body.dataset.chime = 'on'")
    tile = screen.locator("#tiles > [data-queue='0001*101']")
    # The figures below are set by hand: no traffic, no call, so no real panel comes between.
    _http("POST", f"{demo.emulator_url}/_emulator/traffic", {"running": False})
    clear_calls(demo)
    expect(tile.locator("[data-metric=waiting]")).to_have_text("0")
    # Real panels may have chimed already (the demo's queues); count the chimes from here.
    chimed = int(screen.evaluate("document.body.dataset.chimes || '0'"))

    def figures(waiting: int, longest: str, service_level: str) -> None:
        # The watcher's queue panel, as it arrives (an out-of-band swap of the same id).
        screen.evaluate(
            """([queue, waiting, longest, sl]) => {
              const tile = document.querySelector(`#tiles > [data-queue="${queue}"]`);
              const panel = document.createElement("section");
              panel.id = tile.id; panel.dataset.queue = queue;
              for (const [name, text] of [["waiting", waiting], ["longest_wait", longest],
                                          ["service_level", sl]]) {
                const el = document.createElement("span");
                el.dataset.metric = name; el.textContent = text; panel.appendChild(el);
              }
              tile.replaceWith(panel);
            }""",
            [ACME_SUPPORT, str(waiting), longest, service_level],
        )

    figures(1, "0:10", "95 %")
    expect(tile).to_have_attribute("data-level", "ok")
    figures(1, "0:31", "95 %")
    expect(tile).to_have_attribute("data-level", "amber")
    expect(tile.locator("[data-metric=longest_wait]")).to_have_attribute("data-level", "amber")
    figures(0, "0:00", "75 %")
    expect(tile).to_have_attribute("data-level", "amber")
    assert int(screen.evaluate("document.body.dataset.chimes || '0'")) == chimed
    figures(2, "0:58", "90 %")
    # It ticks: a minute of waiting turns the tile red without a word from the server.
    expect(tile).to_have_attribute("data-level", "red", timeout=5000)
    expect(tile.locator("[data-metric=longest_wait]")).to_have_text(re.compile(r"^1:0\d$"))
    assert int(screen.evaluate("document.body.dataset.chimes")) == chimed + 1
    figures(0, "0:00", "59 %")
    expect(tile.locator("[data-metric=service_level]")).to_have_attribute("data-level", "red")
    # Still red: no new chime.
    assert int(screen.evaluate("document.body.dataset.chimes")) == chimed + 1
    _http("POST", f"{demo.emulator_url}/_emulator/traffic", {"running": True})


def clear_calls(demo: Demo) -> None:
    for call in _http("GET", f"{demo.emulator_url}/_emulator/calls"):
        with contextlib.suppress(Exception):  # it may have ended meanwhile
            demo.hang_up(call["id"])


def settle(screen: Page, demo: Demo) -> dict[str, float]:
    """No calls anywhere, none on screen, a garbage collection: the page's heap and nodes."""
    clear_calls(demo)
    expect(screen.locator("#calls-body tr")).to_have_count(0, timeout=15_000)
    screen.wait_for_timeout(1000)
    figures: dict[str, float] = screen.evaluate(
        """() => { window.gc(); return {heap: performance.memory.usedJSHeapSize,
                   nodes: document.getElementsByTagName("*").length}; }"""
    )
    return figures


def churn(screen: Page, demo: Demo, changes: int, deadline: float) -> None:
    """Calls arriving, ringing, answered, talking, abandoned and ending, fast, until the screen
    has seen ``changes`` rows come and go."""
    seen = screen.evaluate("window.__rowsAdded + window.__rowsRemoved")
    while screen.evaluate("window.__rowsAdded + window.__rowsRemoved") - seen < changes:
        assert time.monotonic() < deadline, "the compressed run did not finish in time"
        for queue in (ACME_SALES, ACME_SUPPORT):
            _http(
                "POST",
                f"{demo.emulator_url}/_emulator/calls",
                {"queue": queue, "count": 20, "talkSeconds": 20, "patienceSeconds": 30},
            )
        screen.wait_for_timeout(300)


def test_the_screen_does_not_grow_over_a_compressed_run_of_thousands_of_changes(
    browser: Browser, demo: Demo, admin: Page, capsys: pytest.CaptureFixture[str]
) -> None:
    change_board(admin, "Acme floor", show_calls=True)
    # Every delay of the emulator's calls (ringing, talking, patience) twenty times shorter;
    # no random traffic, so that the screen can be seen empty between runs.
    _http("POST", f"{demo.emulator_url}/_emulator/traffic", {"running": False, "speed": 20})
    with context_for(browser, demo) as context:
        screen = context.new_page()
        open_board(screen, board_address(demo, "Acme"))
        deadline = time.monotonic() + 240
        churn(screen, demo, 300, deadline)  # warm up: code compiled, caches filled
        before = settle(screen, demo)
        started = time.monotonic()

        churn(screen, demo, 4000, deadline)
        after = settle(screen, demo)

        took = time.monotonic() - started
        rows = screen.evaluate("[window.__rowsAdded, window.__rowsRemoved, window.__messages]")
        assert screen.evaluate("window.__sameDocument") is True
    _http("POST", f"{demo.emulator_url}/_emulator/traffic", {"running": True, "speed": 1})

    with capsys.disabled():
        print(
            f"\nwallboard memory run: {rows[0]} rows added, {rows[1]} removed, {rows[2]} "
            f"messages in {took:.0f} s; JS heap {before['heap'] / 1e6:.2f} MB before, "
            f"{after['heap'] / 1e6:.2f} MB after ({(after['heap'] - before['heap']) / 1e3:+.0f} "
            f"kB); DOM nodes {before['nodes']:.0f} before, {after['nodes']:.0f} after"
        )
    assert after["nodes"] <= before["nodes"] + 20
