"""Prometheus metrics of a service process, and the HTTP endpoint that exposes them."""

from __future__ import annotations

import logging

from prometheus_client import Counter, Histogram, start_http_server

logger = logging.getLogger(__name__)

# A gRPC server's RED metrics, named and labelled as the gRPC ecosystem's Prometheus
# middleware names them, so that its dashboards and alerts read them as they are.
_METHOD = ("grpc_type", "grpc_service", "grpc_method")
GRPC_STARTED = Counter("grpc_server_started", "gRPC calls started on the server.", _METHOD)
GRPC_HANDLED = Counter(
    "grpc_server_handled",
    "gRPC calls completed on the server, by status code.",
    (*_METHOD, "grpc_code"),
)
GRPC_HANDLING_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time the server took to handle a gRPC call.",
    _METHOD,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


def serve_metrics(port: int, host: str = "0.0.0.0") -> None:
    """Expose /metrics on its own port (a daemon thread), as Prometheus scrapes it."""
    start_http_server(port, addr=host)
    logger.info("metrics on http://%s:%d/metrics", host, port)
