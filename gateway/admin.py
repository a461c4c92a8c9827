"""The admin dashboard at /admin: sales, top products and orders, read from the REST API."""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ADMIN_URL = "/admin"
ADMIN_ASSETS_URL = "/admin/assets"
# The pages the edge gives the docs pages' policy (`gateway.middleware`): the gateway's own
# scripts and styles, nothing inline, nothing from elsewhere.
ADMIN_PATHS = (ADMIN_URL,)

# A static page: it names its assets and the API by relative URLs ("admin/assets/...",
# "v1/..."), so it works unchanged behind a proxy that mounts the gateway under a prefix.
_ASSETS = ("gateway", "static/admin")


def install_admin(app: FastAPI) -> None:
    """Serve the dashboard page at /admin and its script and style under /admin/assets."""
    page = files("gateway").joinpath("static/admin/admin.html").read_text(encoding="utf-8")
    app.mount(ADMIN_ASSETS_URL, StaticFiles(packages=[_ASSETS]), name="admin-assets")

    @app.get(ADMIN_URL, include_in_schema=False)
    async def admin_dashboard() -> HTMLResponse:
        return HTMLResponse(page)
