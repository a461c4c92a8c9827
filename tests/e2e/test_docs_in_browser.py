"""Headless Chromium uses /docs and /redoc of the real mesh: the pages render from the gateway
alone, and Swagger UI's "Try it out" registers an account from the documented example."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page, Request

from tests.e2e.browser import ARTIFACTS, BROWSER_TESTS, chromium
from tests.e2e.conftest import RunningMesh
from tests.e2e.shop import unique_email

# What the pages may wait for: rendering the whole API takes ReDoc a few seconds on a busy CI.
RENDER_TIMEOUT_MS = 30_000

pytestmark = BROWSER_TESTS


class Recorded:
    """Every request a page makes, and those its Content-Security-Policy stopped unsent."""

    def __init__(self, page: Page) -> None:
        self.urls: list[str] = []
        self.refused: set[str] = set()
        page.on("request", lambda request: self.urls.append(request.url))
        page.on("requestfailed", self._failed)

    def _failed(self, request: Request) -> None:
        if request.failure == "csp":
            self.refused.add(request.url)

    def elsewhere(self) -> list[str]:
        """The requests for anything not on this machine (data: URLs are no request)."""
        assert self.urls, "the page made no request"
        return [
            url
            for url in self.urls
            if urlsplit(url).scheme != "data" and urlsplit(url).hostname != "127.0.0.1"
        ]


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 1600})
    context.set_default_timeout(RENDER_TIMEOUT_MS)
    try:
        yield await context.new_page()
    finally:
        await context.close()


def register_example(document: dict[str, Any]) -> dict[str, Any]:
    (example,) = document["components"]["schemas"]["RegisterRequest"]["examples"]
    assert isinstance(example, dict)
    return example


async def test_swagger_ui_lists_the_operations_and_try_it_out_registers(
    mesh: RunningMesh, page: Page
) -> None:
    recorded = Recorded(page)
    await page.goto(f"{mesh.url}/docs")
    # Swagger UI's markup, with operations drawn from the document: not just the page's shell.
    await page.locator(".swagger-ui .opblock-summary-path").first.wait_for()
    assert await page.locator('[data-path="/v1/products"]').count() > 0
    await page.screenshot(path=ARTIFACTS / "docs.png")
    operation = page.locator(".opblock-post", has=page.locator('[data-path="/v1/auth/register"]'))
    await operation.locator(".opblock-summary").click()
    await operation.locator(".try-out__btn").click()
    body = operation.locator("textarea.body-param__text")
    # Pre-filled with the documented example; its email may be taken already (by the fuzzer,
    # or an earlier run on this database), so the example is sent with an email of its own.
    documented = register_example((await mesh.client.get("/openapi.json")).json())
    assert json.loads(await body.input_value()) == documented
    await body.fill(json.dumps({**documented, "email": unique_email("docs")}))
    await operation.locator(".execute").click()
    answered = operation.locator(".live-responses-table .response .response-col_status")
    await answered.first.wait_for()
    await operation.screenshot(path=ARTIFACTS / "docs-register.png")
    assert (await answered.first.inner_text()).strip() == "201"
    assert recorded.elsewhere() == []
    assert any(urlsplit(url).path == "/v1/auth/register" for url in recorded.urls)


async def test_redoc_renders_the_api(mesh: RunningMesh, page: Page) -> None:
    recorded = Recorded(page)
    await page.goto(f"{mesh.url}/redoc")
    await page.locator(".redoc-wrap").wait_for()
    title = (await mesh.client.get("/openapi.json")).json()["info"]["title"]
    await page.locator("h1", has_text=title).first.wait_for()
    await page.locator("h2", has_text="Create a customer account").first.wait_for()
    assert await page.locator(".http-verb").count() > 0
    assert await page.get_by_text("/v1/products", exact=True).count() > 0
    await page.screenshot(path=ARTIFACTS / "redoc.png")
    # ReDoc's menu shows Redocly's logo from their CDN, whatever its options: the policy
    # stops that request unsent (and ReDoc drops the image). Nothing else may even try.
    assert set(recorded.elsewhere()) <= recorded.refused
