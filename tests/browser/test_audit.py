"""The audit as a supervisor reads it: `manage.py demo` in a subprocess, alice listening on one
call and barging in on another from the live page, then reading, filtering and downloading her
organization's audit in Debian's Chromium."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.demo import ACME_SALES, ACME_SUPPORT, Demo

pytestmark = pytest.mark.browser


@pytest.fixture
def page(browser: Browser, demo: Demo) -> Iterator[Page]:
    context = browser.new_context(
        base_url=demo.url,
        viewport={"width": 1280, "height": 860},
        device_scale_factor=1,
        accept_downloads=True,
    )
    context.set_default_timeout(10_000)
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


def join(page: Page, call_id: str, phone: str, mode: str) -> None:
    """Ring ``phone`` onto the call from its row's dialog, in ``mode``; whatever VoipNow
    answers, the attempt is audited."""
    page.locator(f"tr#call-{call_id}").get_by_role("button", name="Barge in…").click()
    dialog = page.locator("dialog#barge-dialog")
    expect(dialog).to_be_visible()
    dialog.locator("select[name=send_call_to]").select_option(phone)
    dialog.locator(f"input[name=mode][value={mode}]").check()
    dialog.locator("button[type=submit]").click()
    expect(page.locator("#barge-result .result")).to_be_visible()
    dialog.locator("[data-close-dialog]").click()
    expect(dialog).to_be_hidden()


def listed(page: Page) -> list[str]:
    """The call ids of the audit rows on the page, in order."""
    return page.locator("#audit-rows td.call").all_inner_texts()


def test_alice_reads_filters_and_downloads_her_organizations_audit(
    page: Page, demo: Demo, tmp_path: Path
) -> None:
    log_in(page, "alice")
    listened = demo.start_call(ACME_SALES, answer=True)
    barged = demo.start_call(ACME_SUPPORT, answer=True)
    expect(page.locator(f"tr#call-{barged['id']}")).to_be_visible()
    join(page, listened["id"], "0001*024", "listen")
    join(page, barged["id"], "0001*025", "barge")

    page.get_by_role("link", name="Audit").click()
    expect(page).to_have_url(re.compile(r"/audit/$"))
    rows = page.locator("#audit-rows tbody tr")
    expect(rows.first).to_be_visible()
    assert listed(page) == [barged["id"], listened["id"]], "newest first"
    expect(rows.locator("td.supervisor")).to_have_text(["alice", "alice"])
    expect(rows.locator("td.queue")).to_contain_text(["Support", "Sales"])
    expect(rows.locator("td.mode")).to_have_text(["Barge in", "Listen"])
    page.screenshot(path=str(tmp_path / "audit.png"))

    page.select_option("#id_mode", "listen")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"[?&]mode=listen"))
    expect(page.locator("#id_mode")).to_have_value("listen")
    expect(rows.first).to_be_visible()
    modes = rows.evaluate_all("els => els.map(el => el.dataset.mode)")
    assert modes == ["listen"]
    assert listed(page) == [listened["id"]]

    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert re.fullmatch(r"audit-\d{4}-\d\d-\d\d\.csv", saved.name)
    table = list(csv.DictReader(io.StringIO(saved.read_text())))
    assert [r["call id"] for r in table] == [listened["id"]], "the rows the page lists"
    [mine] = table
    assert (mine["mode"], mine["supervisor"]) == ("listen", "alice")
    assert (mine["from phone"], mine["queue"], mine["organization"]) == (
        "0001*024",
        ACME_SALES,
        "Acme",
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", mine["at"])
