"""The HTTP gateway: JWT checks and REST⇄gRPC translation in front of the mesh."""

import meshkit  # noqa: F401  (before anything imports grpc: it sets gRPC's experiments)
