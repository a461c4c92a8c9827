"""Why the payment service refuses a request, by name: each maps to a gRPC status by its base."""

from __future__ import annotations

from meshkit.errors import NotFound


class PaymentNotFound(NotFound):
    """The order has no payment yet, or no such order is the caller's."""

    reason = "PAYMENT_NOT_FOUND"
