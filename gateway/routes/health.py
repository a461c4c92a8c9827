"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gateway.upstreams import UPSTREAMS, Upstreams

router = APIRouter(tags=["operations"])


def _example(document: object) -> dict[int | str, dict[str, object]]:
    return {200: {"content": {"application/json": {"example": document}}}}


@router.get(
    "/healthz",
    summary="Liveness: the gateway process answers",
    responses=_example({"status": "ok"}),
)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: every upstream service reports SERVING",
    responses={
        **_example(
            {
                "status": "ready",
                "upstreams": dict.fromkeys(UPSTREAMS, "SERVING"),
            }
        ),
        503: {"description": "At least one upstream is not SERVING; the body names it."},
    },
)
async def readyz(request: Request) -> JSONResponse:
    upstreams: Upstreams = request.app.state.upstreams
    statuses = await upstreams.health()
    not_serving = sorted(name for name, status in statuses.items() if status != "SERVING")
    body: dict[str, object] = {
        "status": "ready" if not not_serving else "not ready",
        "upstreams": statuses,
    }
    if not_serving:
        body["not_serving"] = not_serving
        return JSONResponse(body, status_code=503)
    return JSONResponse(body)
