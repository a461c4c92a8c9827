"""The HTTP gateway: JWT checks and REST⇄gRPC translation in front of the mesh."""

import sys

import meshkit  # noqa: F401  (before anything imports grpc: it sets gRPC's experiments)

# FastAPI imports pydantic's v1 compatibility package (resident for the life of the
# process) only to refuse routes that use v1 models; the gateway has none, and with the
# package unavailable the check finds none without loading it.
sys.modules.setdefault("pydantic.v1", None)  # type: ignore[arg-type]
