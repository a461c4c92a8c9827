"""Payment service: charges orders with the simulated provider."""

import meshkit  # noqa: F401  (before anything imports grpc: it sets gRPC's experiments)
