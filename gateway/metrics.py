"""Prometheus metrics of the HTTP edge: requests and latency per route template."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.types import Scope

UNMATCHED_ROUTE = "unmatched"
OTHER_METHOD = "OTHER"
# Clients may send any method name: unknown ones share one label value.
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetrics:
    """The collectors, registered once per app in the registry its /metrics serves."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "http_requests",
            "HTTP requests answered, by method, route template and status.",
            ("method", "route", "status"),
            registry=registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ("method", "route"),
            registry=registry,
        )

        # The labelled series by (method, route, status): `labels()` validates and locks on
        # every call. Bounded: methods and route templates are fixed sets, statuses few.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        """One answered request, by the route template the router matched."""
        method = scope["method"] if scope["method"] in _KNOWN_METHODS else OTHER_METHOD
        # The router leaves the matched route in the scope; raw paths carry ids and would
        # make one series per resource.
        route = getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            series = (
                self.requests.labels(method, route, str(status)),
                self.duration.labels(method, route),
            )
            self._series[key] = series
        count, duration = series
        count.inc()
        duration.observe(seconds)


metrics_router = APIRouter()


@metrics_router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
