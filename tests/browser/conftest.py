"""The browser tests' shared fixtures: one Chromium and one demo per module. A module that
needs another demo (no random traffic, a second supervisor, VoipNow 3) or other browser
flags defines its own fixture of the same name."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.browser.demo import Demo, chromium, running_demo


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def demo(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    # Asks for the browser first: without Chromium there is no point starting the demo.
    with running_demo(tmp_path_factory.mktemp("callboard-demo")) as running:
        yield running
