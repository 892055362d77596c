"""The agent panel as a supervisor meets it: `manage.py demo` and Debian's Chromium."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser import test_live_calls as live_page
from tests.browser.demo import Demo, _http
from tests.browser.test_live_calls import log_in

# Chromium and a demo for this module come from conftest; the live page's fresh page per test.
page = live_page.page

pytestmark = pytest.mark.browser


def test_alice_sees_each_agent_live_and_filters_them_by_queue(page: Page, demo: Demo) -> None:
    log_in(page, "alice")
    agents = page.locator("#agents [data-agent]")
    expect(agents).to_have_count(6)
    ann = page.locator("#agents [data-agent='0001*201']")
    expect(ann).to_contain_text("Ann")
    expect(ann.locator(".timer")).to_have_text(re.compile(r"^\d+:\d\d$"))  # ticking

    call = demo.start_call("0001*100")
    _http("POST", f"{demo.emulator_url}/_emulator/calls/{call['id']}/answer", {"agent": "201"})
    expect(ann).to_have_attribute("data-state", "on_call")
    expect(ann).to_contain_text(call["id"])

    page.select_option("#agent-queue-filter", "0001*101")
    expect(ann).to_be_hidden()
    expect(page.locator("#agents [data-agent='0001*204']")).to_be_visible()

    page.reload()  # the choice stays
    expect(page.locator("#agent-queue-filter")).to_have_value("0001*101")
    expect(page.locator("#agents [data-agent='0001*204']")).to_be_visible()
    expect(ann).to_be_hidden()

    page.select_option("#agent-queue-filter", "")
    expect(ann).to_be_visible()
    demo.hang_up(call["id"])
