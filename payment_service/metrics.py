"""Prometheus metrics of payments: each charge's outcome and each refund, once committed.

They count what the payment events report (payment.succeeded, payment.failed,
payment.refunded): an order cancelled before it was charged gets a FAILED payment row but no
charge, no event, and no count.
"""

from __future__ import annotations

from prometheus_client import Counter

PAYMENTS = Counter(
    "payments_total",
    "Payments by outcome (succeeded, failed, refunded), once the outcome committed.",
    ["outcome"],
)
# Bound once: `labels()` validates and locks on every call, and every order counts one.
SUCCEEDED = PAYMENTS.labels("succeeded")
FAILED = PAYMENTS.labels("failed")
REFUNDED = PAYMENTS.labels("refunded")
