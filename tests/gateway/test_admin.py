"""The admin dashboard loads everything from the gateway, under a policy that allows nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx
import pytest

from tests.gateway.conftest import StubUpstream, running_gateway
from tests.gateway.test_docs import CONTENT_TYPES, directives, parts

PAGE = "/admin"
SELF_ONLY = {"default-src": ["'self'"], "frame-ancestors": ["'none'"]}


@pytest.fixture
async def client(stub: StubUpstream) -> AsyncIterator[httpx.AsyncClient]:
    async with running_gateway(stub) as (_, http):
        yield http


def asset_urls(html: str) -> list[str]:
    """The page's assets as the browser asks for them: its URLs are relative to /admin."""
    return [
        urljoin(f"http://gateway{PAGE}", url).removeprefix("http://gateway")
        for url in parts(html).loads
    ]


async def test_the_dashboard_loads_nothing_from_outside_and_nothing_inline(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(PAGE)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    found = parts(response.text)
    assert sorted(asset_urls(response.text)) == [
        "/admin/assets/admin.css",
        "/admin/assets/admin.js",
    ]
    assert "http://" not in response.text and "https://" not in response.text
    assert found.inline_scripts == 0
    assert found.style_elements == 0
    assert found.style_attributes == 0


async def test_the_dashboard_and_its_assets_allow_the_gateway_alone(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get(PAGE)
    for url in (PAGE, *asset_urls(page.text)):
        response = await client.get(url)
        assert response.status_code == 200, url
        suffix = url[url.rindex(".") :] if "." in url else ".html"
        if suffix != ".html":
            assert response.headers["content-type"].split(";")[0] in CONTENT_TYPES[suffix], url
        assert response.content, url
        assert len(response.headers.get_list("content-security-policy")) == 1, url
        assert directives(response.headers["content-security-policy"]) == SELF_ONLY, url
        assert response.headers["x-frame-options"] == "DENY", url


async def test_the_dashboard_s_script_and_style_name_no_other_origin(
    client: httpx.AsyncClient,
) -> None:
    for url in ("/admin/assets/admin.js", "/admin/assets/admin.css"):
        text = (await client.get(url)).text
        # The one absolute URL allowed: SVG's namespace, a name the browser never fetches.
        assert text.replace("http://www.w3.org/2000/svg", "").count("://") == 0, url
        # Tokens stay in the tab's sessionStorage, never in a cookie the browser would send.
        assert "document.cookie" not in text, url
        assert "localStorage" not in text, url


async def test_the_dashboard_s_script_calls_only_the_rest_api(client: httpx.AsyncClient) -> None:
    script = (await client.get("/admin/assets/admin.js")).text
    for path in (
        "v1/auth/login",
        "v1/users/me",
        "v1/analytics/sales",
        "v1/analytics/top-products",
        "v1/orders",
        "/timeline",
    ):
        assert path in script, path
    # Text from the API is written as text: a product named <img onerror=...> stays a name.
    assert "innerHTML" not in script


async def test_a_trailing_slash_leads_to_the_dashboard(client: httpx.AsyncClient) -> None:
    response = await client.get("/admin/")
    assert response.status_code in (307, 308)
    assert response.headers["location"].endswith("/admin")


async def test_an_unknown_asset_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/admin/assets/nothing.js")).status_code == 404
    # The docs' assets are theirs: the dashboard's folder holds only its own.
    assert (await client.get("/admin/assets/swagger-init.js")).status_code == 404


async def test_the_dashboard_is_not_in_the_api_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith("/admin")]


class Controls(HTMLParser):
    """The page's form controls, and the controls its labels name."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[str] = []
        self.labelled: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag in ("input", "select", "textarea"):
            self.controls.append(values.get("id", ""))
        elif tag == "label":
            self.labelled.add(values.get("for", ""))


async def test_every_control_of_the_dashboard_has_a_label(client: httpx.AsyncClient) -> None:
    found = Controls()
    found.feed((await client.get(PAGE)).text)
    assert sorted(found.controls) == ["email", "from", "granularity", "password", "to"]
    assert set(found.controls) <= found.labelled
