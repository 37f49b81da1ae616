"""Fixtures of the end-to-end tests: a temp workspace, `workbench ui` on a free port, Debian's Chromium.

One streamlit server and one browser per test module keep the browser tests fast. Playwright never
downloads a browser: it drives /usr/bin/chromium, and the browser tests skip where it is missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import CHROMIUM, CHROMIUM_FLAGS, UiServer


@pytest.fixture(scope="module")
def ui_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ui") / "workspace"


@pytest.fixture(scope="module")
def ui_server(ui_workspace: Path) -> Iterator[UiServer]:
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium")
    ui_workspace.mkdir(parents=True, exist_ok=True)
    server = UiServer(ui_workspace)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium")
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True)
        try:
            yield b
        finally:
            b.close()
