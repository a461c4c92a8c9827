"""A simulated card processor with deterministic outcomes, named like Stripe's test methods."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChargeResult:
    succeeded: bool
    failure_code: str = ""
    failure_reason: str = ""


_DECLINES = {
    "pm_card_chargeDeclined": ("card_declined", "Your card was declined."),
    "pm_card_chargeDeclinedInsufficientFunds": (
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
    "pm_card_chargeDeclinedExpiredCard": ("expired_card", "Your card has expired."),
}
SUCCEEDING_METHODS = frozenset({"pm_card_visa", "pm_card_mastercard", "pm_card_amex"})


class SimulatedProvider:
    """Charges never touch a network; the payment method alone decides the outcome."""

    def __init__(self, amount_limit_minor: int) -> None:
        self.amount_limit_minor = amount_limit_minor

    def charge(
        self, amount_minor: int, currency_code: str, payment_method: str, *, idempotency_key: str
    ) -> ChargeResult:
        """Charge the method. `idempotency_key` names the charge: a real processor is asked
        with it (Stripe's `Idempotency-Key`), so that a charge made again, after the
        transaction that recorded it rolled back (a crash, or another message of its batch
        failing), is answered with the first one's outcome instead of charging twice."""
        if payment_method in _DECLINES:
            code, reason = _DECLINES[payment_method]
            return ChargeResult(False, code, reason)
        if payment_method not in SUCCEEDING_METHODS:
            return ChargeResult(
                False, "invalid_payment_method", f"Unknown payment method {payment_method!r}."
            )
        if amount_minor > self.amount_limit_minor:
            return ChargeResult(
                False,
                "amount_too_large",
                f"The amount exceeds the limit of {self.amount_limit_minor} minor units.",
            )
        return ChargeResult(True)

    def refund(
        self, amount_minor: int, currency_code: str, payment_method: str, *, idempotency_key: str
    ) -> None:
        """Give a charge back in full, once per `idempotency_key` (as `charge`); a simulated
        charge can always be refunded."""
