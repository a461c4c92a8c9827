"""Order service: cart, orders and the saga, timeline, analytics."""

import meshkit  # noqa: F401  (before anything imports grpc: it sets gRPC's experiments)
