"""Product service: catalog, categories, the Redis cache and stock reservations."""

import meshkit  # noqa: F401  (before anything imports grpc: it sets gRPC's experiments)
