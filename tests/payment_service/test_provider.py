"""The simulated processor's outcomes are fixed by the payment method and the amount."""

from __future__ import annotations

import pytest

from payment_service.provider import SimulatedProvider

provider = SimulatedProvider(amount_limit_minor=100_000)


@pytest.mark.parametrize(
    ("method", "amount", "code"),
    [
        ("pm_card_visa", 1_999, ""),
        ("pm_card_visa", 100_000, ""),
        ("pm_card_visa", 100_001, "amount_too_large"),
        ("pm_card_chargeDeclined", 1_999, "card_declined"),
        ("pm_card_chargeDeclinedInsufficientFunds", 1_999, "insufficient_funds"),
        ("pm_card_unknown", 1_999, "invalid_payment_method"),
    ],
)
def test_outcomes(method: str, amount: int, code: str) -> None:
    result = provider.charge(amount, "USD", method, idempotency_key="charge-o-1")
    assert result.succeeded is (code == "")
    assert result.failure_code == code
    assert bool(result.failure_reason) is (code != "")
