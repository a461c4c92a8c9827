"""Notification service: emails for order and payment events."""

import meshkit  # noqa: F401  (before anything imports grpc: it sets gRPC's experiments)
