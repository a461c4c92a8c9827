"""A payment as the domain sees it: a plain record, read and written through the repository."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    """An order's one payment: the columns of `models.Payment`."""

    id: str
    order_id: str
    user_id: str
    amount_minor: int
    currency_code: str
    # PENDING only inside the transaction that charges; then SUCCEEDED, FAILED or REFUNDED.
    status: str
    payment_method: str
    failure_code: str
    failure_reason: str
    created_at: datetime
    refunded_at: datetime | None
