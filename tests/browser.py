"""Headless chromium for the browser tests (Debian's, driven by playwright: `playwright install`
cannot download browsers here). Shared by tests/test_access.py and the inspector's tests."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
]


def browser_or_skip() -> Any:
    """Playwright driving the system's chromium; in CI both must be there (`.ci/run` installs
    them), elsewhere the test says how to get them."""
    missing = []
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing.append("pip install playwright")
        sync_playwright = None
    if not shutil.which(CHROMIUM):
        missing.append("apt-get install -y chromium")
    if missing:
        message = f"needs a browser: {' && '.join(missing)}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return sync_playwright
