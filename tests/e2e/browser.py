"""What the browser tests share: Debian's Chromium driven by Playwright, where screenshots go,
and the marks that skip them on a machine without the browser."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from playwright.async_api import Browser, async_playwright

from meshkit.settings import VAR_DIR

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Kept after the run (var/ is not versioned): what the pages looked like, for a reader of a
# failed build.
ARTIFACTS = VAR_DIR / "test-artifacts"

# Skipped on a laptop without it; CI installs it (deployments/local/ensure-services.sh), so
# there a missing browser fails rather than passes unseen.
BROWSER_TESTS = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        CHROMIUM is None and not os.environ.get("CI"),
        reason="no chromium (Debian: apt install chromium)",
    ),
]


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium, never a browser Playwright would download."""
    assert CHROMIUM is not None, "no chromium (Debian: apt install chromium)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()
