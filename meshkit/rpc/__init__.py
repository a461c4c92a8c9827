"""gRPC on both ends: the server and its interceptors, client channels, and the conversions and
page tokens every API shares."""

from __future__ import annotations

from meshkit.rpc.channels import Channels, MeshChannel, create_channel
from meshkit.rpc.interceptors import (
    InterceptorChain,
    TokenVerifier,
    UnaryInterceptor,
)
from meshkit.rpc.pagination import PageTokenCodec, page_size
from meshkit.rpc.protobuf import mask_paths, money, timestamp, to_datetime, to_timestamp
from meshkit.rpc.server import (
    LIVENESS,
    OVERALL_HEALTH,
    GrpcServer,
    ServiceRegistration,
    start_grpc_server,
)
from meshkit.rpc.statuses import ERROR_DOMAIN, domain_reason, rich_status, status_for

__all__ = [
    "ERROR_DOMAIN",
    "LIVENESS",
    "OVERALL_HEALTH",
    "Channels",
    "GrpcServer",
    "InterceptorChain",
    "MeshChannel",
    "PageTokenCodec",
    "ServiceRegistration",
    "TokenVerifier",
    "UnaryInterceptor",
    "create_channel",
    "domain_reason",
    "mask_paths",
    "money",
    "page_size",
    "rich_status",
    "start_grpc_server",
    "status_for",
    "timestamp",
    "to_datetime",
    "to_timestamp",
]
