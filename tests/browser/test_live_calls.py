"""The product as a supervisor meets it: `manage.py demo` in a subprocess on free ports, the
emulator it starts as VoipNow, and Debian's Chromium on the live page."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import chromium_path
from tests.support.ports import free_port, port_open
from tests.support.readiness import watcher_state
from tests.support.waiting import wait_for

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
# The README's picture; refreshed when asked, so a test run leaves the work tree unchanged.
README_SCREENSHOT = ROOT / "docs" / "screenshot.png"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Settings the demo must not inherit: it runs on its embedded defaults with fresh secrets.
FOREIGN_SETTINGS = (
    "DATABASE_URL",
    "REDIS_URL",
    "DJANGO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
    "DJANGO_DEBUG",
    "CALLBOARD_HOOK_SECRET",
    "UAPI_CLIENT_ID",
    "UAPI_CLIENT_SECRET",
)
# Before any page script runs, keep a handle on every socket the page opens and record each
# text the connection indicator shows, so a short "reconnecting…" cannot slip by unseen.
TRACK_PAGE = """
(() => {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.WebSocket = class extends Native {
    constructor(...args) { super(...args); window.__sockets.push(this); }
  };
  window.__connectionTexts = [];
  document.addEventListener("DOMContentLoaded", () => {
    const el = document.getElementById("connection");
    if (!el) { return; }
    new MutationObserver(() => window.__connectionTexts.push(el.textContent))
      .observe(el, {childList: true, characterData: true, subtree: true});
  });
})();
"""
ACME_SALES, ACME_SUPPORT, GLOBEX_SALES = "0001*100", "0001*101", "0002*100"
ALICE_PHONE = "0001*024"


def _http(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


@dataclass
class Demo:
    url: str
    emulator_url: str
    port: int
    emulator_port: int
    process: subprocess.Popen[bytes]
    log: Path

    def start_call(self, queue: str, *, answer: bool = False) -> dict[str, Any]:
        """Start an inbound call that waits in `queue` until told otherwise; answer it by the
        queue's first free agent if asked. Returns the emulator's PhoneCall."""
        call = _http(
            "POST", f"{self.emulator_url}/_emulator/calls", {"queue": queue, "autoAnswer": False}
        )
        if answer:
            call = _http("POST", f"{self.emulator_url}/_emulator/calls/{call['id']}/answer", {})
        return call

    def hang_up(self, call_id: str) -> None:
        _http("DELETE", f"{self.emulator_url}/_emulator/calls/{call_id}")

    def watcher_state(self) -> str | None:
        return watcher_state(self.url)

    def stop(self) -> int:
        """Ctrl-C, as a user stops it, then wait; a hang is killed. Returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def emulator_pids(self) -> list[int]:
        """The emulator processes started for this demo that are still alive."""
        wanted = ["uapi_emulator", "--port", str(self.emulator_port)]
        pids = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                argv = cmdline.read_bytes().decode(errors="replace").split("\0")
            except OSError:
                continue  # gone while we looked
            if all(arg in argv for arg in wanted):
                pids.append(int(cmdline.parent.name))
        return pids


def _ctrl_c_reaches_the_demo() -> None:
    # A shell that started us in the background may ignore SIGINT; a terminal user's doesn't.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def running_demo(var_dir: Path, voipnow: int = 5) -> Iterator[Demo]:
    """`manage.py demo` on free ports with a fresh database and fresh secrets, its emulator
    playing VoipNow ``voipnow``, once its watcher reports "ok"; stopped on the way out,
    whatever happened."""
    port, emulator_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_SETTINGS}
    env |= {
        "CALLBOARD_VAR_DIR": str(var_dir),
        "UAPI_BASE_URL": f"http://127.0.0.1:{emulator_port}",
        "CALLBOARD_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "PYTHONUNBUFFERED": "1",
        "VOIPNOW_VERSION": {5: "5.6", 3: "3.5"}[voipnow],
    }
    log = var_dir / "demo.log"
    command = ["manage.py", "demo", "--port", str(port), "--emulator-port", str(emulator_port)]
    command += ["--voipnow", str(voipnow)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, *command],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_ctrl_c_reaches_the_demo,
        )
    demo = Demo(
        url=f"http://127.0.0.1:{port}",
        emulator_url=f"http://127.0.0.1:{emulator_port}",
        port=port,
        emulator_port=emulator_port,
        process=process,
        log=log,
    )
    try:
        with contextlib.suppress(AssertionError):
            wait_for(
                lambda: process.poll() is not None or demo.watcher_state() == "ok",
                30,
                "the demo's watcher",
                interval=0.2,
            )
        if process.poll() is not None or demo.watcher_state() != "ok":
            pytest.fail(f"the demo did not come up; its log:\n{log.read_text()[-3000:]}")
        yield demo
    finally:
        demo.stop()
        for pid in demo.emulator_pids():
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_path()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def demo(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    # Asks for the browser first: without Chromium there is no point starting the demo.
    with running_demo(tmp_path_factory.mktemp("callboard-var")) as running:
        yield running


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

    page.wait_for_function("window.__connectionTexts.includes('reconnecting…')")
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
