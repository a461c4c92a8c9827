"""The API docs pages, Swagger UI at /docs and ReDoc at /redoc, with assets the gateway serves."""

from __future__ import annotations

import secrets
from html import escape

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs/assets"
# The pages the edge gives DOCS_CSP (`gateway.middleware`), and everything under them.
DOCS_PATHS = (DOCS_URL, REDOC_URL)
# Scripts, styles, images and the OpenAPI document from the gateway, from nowhere else.
DOCS_CSP = "default-src 'self'; frame-ancestors 'none'"

# Swagger UI and ReDoc as built for browsers, from the fastapi-offline package (installed with
# the gateway), and the pages' start-up scripts and style from this package: all read from
# disk, so the docs work where no CDN can be reached.
_ASSET_PACKAGES: list[str | tuple[str, str]] = [
    ("gateway", "static"),
    ("fastapi_offline", "static"),
]

# Not FastAPI's get_swagger_ui_html and get_redoc_html: they write an inline <script> and
# <style>, which DOCS_CSP refuses. These pages load every script and style from a file.
_SWAGGER_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - Swagger UI</title>
<link rel="icon" href="{assets}/favicon.png">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/swagger-init.js"></script>
</body>
</html>
"""

_REDOC_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - ReDoc</title>
<link rel="icon" href="{assets}/favicon.png">
<link rel="stylesheet" href="{assets}/redoc.css">
</head>
<body>
<noscript>ReDoc needs JavaScript to show the documentation.</noscript>
<div id="redoc" data-spec-url="{openapi_url}" data-style-nonce="{nonce}"></div>
<script src="{assets}/redoc.standalone.js"></script>
<script src="{assets}/redoc-init.js"></script>
</body>
</html>
"""


def redoc_csp(style_nonce: str) -> str:
    """DOCS_CSP, and the <style> elements ReDoc writes as it renders, by their nonce.

    ReDoc styles itself through styled-components, which inserts <style> elements at run time:
    with no way for them in, ReDoc stops at its first component. Scripts stay the gateway's.
    """
    return f"{DOCS_CSP}; style-src 'self' 'nonce-{style_nonce}'"


def _page(template: str, app: FastAPI, request: Request, **values: str) -> str:
    # Behind a proxy that mounts the gateway under a prefix, every URL carries that prefix.
    root = request.scope.get("root_path", "")
    return template.format(
        title=escape(app.title),
        assets=escape(f"{root}{ASSETS_URL}"),
        openapi_url=escape(f"{root}{app.openapi_url}"),
        **{name: escape(value) for name, value in values.items()},
    )


def install_docs(app: FastAPI) -> None:
    """Serve /docs, /redoc and their assets; `app` must be built with FastAPI's own docs off."""
    if app.docs_url or app.redoc_url:
        raise ValueError("turn FastAPI's docs off (docs_url=None, redoc_url=None) first")
    app.mount(ASSETS_URL, StaticFiles(packages=_ASSET_PACKAGES), name="docs-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return HTMLResponse(_page(_SWAGGER_PAGE, app, request))

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        # A new nonce for every answer: one seen once is no use on another page.
        nonce = secrets.token_urlsafe(16)
        return HTMLResponse(
            _page(_REDOC_PAGE, app, request, nonce=nonce),
            headers={"content-security-policy": redoc_csp(nonce)},
        )
