"""Prometheus metrics of a service process, and the HTTP endpoint that exposes them."""

from __future__ import annotations

import logging

from prometheus_client import Histogram, start_http_server

logger = logging.getLogger(__name__)

RPC_SECONDS = Histogram(
    "grpc_server_handled_seconds",
    "Time to handle a gRPC call, by method and status code.",
    ["method", "code"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


def serve_metrics(port: int, host: str = "0.0.0.0") -> None:
    """Expose /metrics on its own port (a daemon thread), as Prometheus scrapes it."""
    start_http_server(port, addr=host)
    logger.info("metrics on http://%s:%d/metrics", host, port)
