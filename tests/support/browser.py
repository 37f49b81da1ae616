"""Driving the workbench in Chromium (Playwright sync API): `workbench ui` as a subprocess, Debian's
Chromium and its flags, and small page helpers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class UiServer:
    """`workbench ui` as a subprocess in its own process group (streamlit is its child)."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, WORKBENCH_HOME=str(workspace), PYTHONUNBUFFERED="1")
        env.pop("WORKBENCH_DATABASE_URL", None)
        self.log_path = workspace.parent / f"ui-{self.port}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "workbench.cli",
                "ui",
                "--workspace",
                str(workspace),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            cwd=REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait()

    def _wait(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"workbench ui exited early:\n{self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"workbench ui did not answer in {timeout_s} s:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


TIMEOUT_MS = 20_000
CLASS_PICKER = 'select[data-role="class"]'
"""The annotator's class picker (its toolbar has other selects: the assist bar's method and run)."""


def new_page(browser: Any, base_url: str) -> Any:
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = ctx.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(base_url)
    page.get_by_role("heading", name="Projects").wait_for()
    return page


def nav(page: Any, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title).click()
    page.get_by_role("heading", name=title).first.wait_for()


def open_project(page: Any, name: str) -> None:
    nav(page, "Projects")
    page.locator('[data-testid="stVerticalBlock"]', has_text=name).filter(
        has=page.locator("button", has_text="Open")
    ).last.wait_for()
    if page.get_by_text(f"▶ {name}").count():
        return  # already open (a workspace with one project opens it by itself)
    row = (
        page.locator('[data-testid="stVerticalBlock"]', has_text=name)
        .filter(has=page.locator("button", has_text="Open"))
        .last
    )
    row.locator("button", has_text="Open").click()
    page.get_by_text(f"▶ {name}").wait_for()


def create_project(page: Any, name: str) -> None:
    nav(page, "Projects")
    page.get_by_label("New project name").fill(name)
    page.get_by_role("button", name="Create project").click()
    page.get_by_text("Created and opened project").wait_for()


def annotator(page: Any) -> Any:
    return page.locator(".wb-annot")


def wait_image_drawn(page: Any, image_id: int | None = None) -> int:
    sel = ".wb-annot[data-loaded-image]" if image_id is None else f'.wb-annot[data-loaded-image="{image_id}"]'
    page.locator(sel).wait_for()
    return int(page.locator(".wb-annot").get_attribute("data-loaded-image"))


def wait_keys_to_annotator(page: Any, timeout_ms: int = 20000) -> None:
    """Wait until the keyboard focus is the annotator's again (a page control's rerun has settled)."""
    page.wait_for_function(
        "() => { const a = document.activeElement;"
        " const r = a && a.shadowRoot ? a.shadowRoot.activeElement : null;"
        " return !!(r && r.closest && r.closest('.wb-annot')); }",
        timeout=timeout_ms,
    )


def natural_to_client(page: Any, size_wh: tuple[int, int]) -> Callable[[float, float], tuple[float, float]]:
    """Map natural image pixels to page pixels for the fitted view (viewBox = whole image, meet)."""
    box = page.locator(".wb-svg").bounding_box()
    w, h = size_wh
    s = min(box["width"] / w, box["height"] / h)
    ox = box["x"] + (box["width"] - w * s) / 2
    oy = box["y"] + (box["height"] - h * s) / 2
    return lambda x, y: (ox + x * s, oy + y * s)


def client_to_natural(page: Any, size_wh: tuple[int, int]) -> Callable[[float, float], tuple[float, float]]:
    box = page.locator(".wb-svg").bounding_box()
    w, h = size_wh
    s = min(box["width"] / w, box["height"] / h)
    ox = box["x"] + (box["width"] - w * s) / 2
    oy = box["y"] + (box["height"] - h * s) / 2
    return lambda cx, cy: ((cx - ox) / s, (cy - oy) / s)


def wait_for(fn: Callable[[], T], pred: Callable[[T], bool], timeout_s: float = 20.0, what: str = "") -> T:
    """Poll ``fn`` until ``pred`` holds (the store is written by another process)."""
    deadline = time.monotonic() + timeout_s
    value = fn()
    while not pred(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or 'condition'}; last value: {value!r}")
        time.sleep(0.1)
        value = fn()
    return value


def view_mapping(
    page: Any,
) -> tuple[Callable[[float, float], tuple[float, float]], Callable[[float, float], tuple[float, float]]]:
    """(natural -> page, page -> natural) for the current zoom and pan, from the SVG's viewBox and
    box alone (preserveAspectRatio meet): an independent check of the annotator's own mapping."""
    svg = page.locator(".wb-svg")
    vx, vy, vw, vh = (float(v) for v in svg.get_attribute("viewBox").split())
    box = svg.bounding_box()
    s = min(box["width"] / vw, box["height"] / vh)
    ox = box["x"] + (box["width"] - vw * s) / 2
    oy = box["y"] + (box["height"] - vh * s) / 2

    def to_client(x: float, y: float) -> tuple[float, float]:
        return ox + (x - vx) * s, oy + (y - vy) * s

    def to_natural(cx: float, cy: float) -> tuple[float, float]:
        return vx + (cx - ox) / s, vy + (cy - oy) / s

    return to_client, to_natural


def view_box(page: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in page.locator(".wb-svg").get_attribute("viewBox").split())


def wait_idle(page: Any) -> None:
    """Wait until the app's rerun has finished (Streamlit's running indicator is gone)."""
    page.wait_for_timeout(300)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')")
