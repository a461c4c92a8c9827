"""The API docs pages load everything from the gateway, under a policy that allows nothing else."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser

import httpx
import pytest

from tests.gateway.conftest import StubUpstream, running_gateway

PAGES = ("/docs", "/redoc")
CONTENT_TYPES = {
    ".js": ("text/javascript", "application/javascript"),
    ".css": ("text/css",),
    ".png": ("image/png",),
}
NONCE = re.compile(r"'nonce-([A-Za-z0-9_-]{16,})'")


class PageParts(HTMLParser):
    """What a page loads (scripts, styles, icons) and what it carries inline."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.inline_scripts = 0
        self.style_elements = 0
        self.style_attributes = 0
        self.data: dict[str, str] = {}
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if "style" in values:
            self.style_attributes += 1
        self.data.update({k: v for k, v in values.items() if k.startswith("data-")})
        if tag == "script":
            self._in_script = True
            if "src" in values:
                self.loads.append(values["src"])
            else:
                self.inline_scripts += 1
        elif tag == "link":
            self.loads.append(values["href"])
        elif tag == "style":
            self.style_elements += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


def parts(html: str) -> PageParts:
    parser = PageParts()
    parser.feed(html)
    return parser


def directives(policy: str) -> dict[str, list[str]]:
    """A Content-Security-Policy as {directive: [sources]}."""
    parsed: dict[str, list[str]] = {}
    for directive in policy.split(";"):
        name, *sources = directive.split()
        parsed[name] = sources
    return parsed


@pytest.fixture
async def client(stub: StubUpstream) -> AsyncIterator[httpx.AsyncClient]:
    async with running_gateway(stub) as (_, http):
        yield http


@pytest.mark.parametrize("page", PAGES)
async def test_a_docs_page_loads_nothing_from_outside_and_nothing_inline(
    client: httpx.AsyncClient, page: str
) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    found = parts(response.text)
    assert found.loads, "the page loads its assets"
    for url in found.loads:
        assert url.startswith("/docs/assets/"), url
    assert "http://" not in response.text and "https://" not in response.text
    # The policy admits no inline script or style: the page must need none.
    assert found.inline_scripts == 0
    assert found.style_elements == 0
    assert found.style_attributes == 0


@pytest.mark.parametrize("page", PAGES)
async def test_every_asset_a_docs_page_names_is_served_with_its_type(
    client: httpx.AsyncClient, page: str
) -> None:
    for url in parts((await client.get(page)).text).loads:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        suffix = url[url.rindex(".") :]
        assert asset.headers["content-type"].split(";")[0] in CONTENT_TYPES[suffix], url
        assert asset.content, url


async def test_the_pages_load_the_document_the_gateway_serves(client: httpx.AsyncClient) -> None:
    swagger = parts((await client.get("/docs")).text)
    redoc = parts((await client.get("/redoc")).text)
    assert swagger.data["data-openapi-url"] == redoc.data["data-spec-url"] == "/openapi.json"
    assert "/v1/products" in (await client.get("/openapi.json")).json()["paths"]


async def test_swagger_ui_and_its_assets_allow_the_gateway_alone(
    client: httpx.AsyncClient,
) -> None:
    for url in ("/docs", "/docs/assets/swagger-init.js", "/docs/assets/swagger-ui-bundle.js"):
        policy = directives((await client.get(url)).headers["content-security-policy"])
        assert policy == {"default-src": ["'self'"], "frame-ancestors": ["'none'"]}, url


async def test_redoc_allows_the_gateway_alone_and_its_own_styles_by_nonce(
    client: httpx.AsyncClient,
) -> None:
    first, second = await client.get("/redoc"), await client.get("/redoc")
    policy = directives(first.headers["content-security-policy"])
    style_sources = policy.pop("style-src")
    assert policy == {"default-src": ["'self'"], "frame-ancestors": ["'none'"]}
    # No 'unsafe-inline', no other origin: the nonce the page hands ReDoc for the <style>
    # elements it writes, new for every answer.
    (nonce_source,) = [source for source in style_sources if source != "'self'"]
    match = NONCE.fullmatch(nonce_source)
    assert match is not None, nonce_source
    assert parts(first.text).data["data-style-nonce"] == match.group(1)
    assert first.headers["content-security-policy"] != second.headers["content-security-policy"]
    assert len(first.headers.get_list("content-security-policy")) == 1


async def test_fastapi_s_own_oauth2_redirect_page_is_gone(client: httpx.AsyncClient) -> None:
    # The API's scheme is a bearer token: there is no OAuth2 flow to come back from.
    assert (await client.get("/docs/oauth2-redirect")).status_code == 404
