"""User service: accounts, login, JWT and JWKS, service tokens."""

import meshkit  # noqa: F401  (before anything imports grpc: it sets gRPC's experiments)
