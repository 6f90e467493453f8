"""Fixtures of the browser tests: Playwright for Python driving Debian's Chromium against a real ``plush serve``.

The browser is ``/usr/bin/chromium`` (``make test`` installs Debian's ``chromium`` with apt when it is root and
the package is missing: tests/setup-system.sh); Playwright's own browser downloads are never used. Without
Chromium or the ``playwright`` package the tests skip with the reason and how to enable them. Each test gets a
fresh browser profile (``--user-data-dir`` in its temporary directory) and the launch flags below, which keep
Chromium from reaching anything but the loopback server under test.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

CHROMIUM = Path("/usr/bin/chromium")
#: besides headless (Playwright's ``headless=True``) and the profile directory
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ENABLE = "install Debian's chromium (apt-get install chromium; make test does it as root), pip install -e '.[dev]'"


def _playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip(f"the playwright package is not installed: {ENABLE}")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: {ENABLE}")
    return sync_playwright


@pytest.fixture
def playwright_driver() -> Iterator[Any]:
    """A Playwright driver for one test. Not for the session: while a sync driver is open its event loop counts
    as running in this thread, and every asyncio test after it would fail ("another loop is running")."""
    sync_playwright = _playwright()
    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def browser_context(playwright_driver: Any, tmp_path: Path) -> Iterator[Any]:
    """A headless Chromium with a fresh profile in the test's temporary directory; closed after the test."""
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    context = playwright_driver.chromium.launch_persistent_context(
        str(profile),
        executable_path=str(CHROMIUM),
        headless=True,
        args=LAUNCH_ARGS,
        viewport={"width": 1400, "height": 900},
    )
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(browser_context: Any) -> Any:
    """A page of the test's browser; what the page logs to its console is kept on ``page.console_lines``."""
    page = browser_context.pages[0] if browser_context.pages else browser_context.new_page()
    lines: list[str] = []
    page.on("console", lambda message: lines.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: lines.append(f"pageerror: {error}"))
    page.console_lines = lines
    return page


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where a test saves its screenshots (under its temporary directory)."""
    path = tmp_path / "screenshots"
    path.mkdir()
    return path
