"""The demo as the browser tests run it: `manage.py demo` in a subprocess on free ports with
fresh secrets, the emulator's control API to make calls, and Debian's Chromium to look."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.conftest import chromium_path
from tests.support.ports import free_port
from tests.support.readiness import watcher_state
from tests.support.waiting import wait_for

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
# The pages' Content-Security-Policy forbids eval, which Playwright's wait_for_function uses to
# poll an expression: give it a function ("() => window.x > 1"), which it calls without eval.
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


@contextlib.contextmanager
def chromium(*extra_args: str) -> Iterator[Browser]:
    """Debian's Chromium, headless, with CHROMIUM_ARGS and ``extra_args``."""
    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=[*CHROMIUM_ARGS, *extra_args], headless=True
        )
        yield browser
        browser.close()
