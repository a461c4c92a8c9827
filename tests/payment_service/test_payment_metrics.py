"""Payments counted by outcome on each backend, once committed: a charge that succeeds or is
declined, a refund, and nothing for an order cancelled before its charge or a rolled-back one."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from meshkit.ids import new_id
from meshkit.messaging import Envelope, event_type_of
from payment_service.models import metadata
from tests.conftest import DatabaseFactory
from tests.payment_service.test_cancellations import cancelled, created, deliver, payments_on

OUTCOMES = ("succeeded", "failed", "refunded")


def payments() -> dict[str, float]:
    """How many payments had each outcome, so far."""
    return {
        outcome: REGISTRY.get_sample_value("payments_total", {"outcome": outcome}) or 0.0
        for outcome in OUTCOMES
    }


def counted_since(before: dict[str, float]) -> dict[str, float]:
    return {outcome: count - before[outcome] for outcome, count in payments().items()}


async def test_charges_and_refunds_are_counted_by_outcome(
    database_on_each_backend: DatabaseFactory,
) -> None:
    database = await database_on_each_backend(metadata)
    service = await payments_on(database)
    before = payments()

    charged, declined, never = new_id(), new_id(), new_id()
    await deliver(service, database, created(charged))
    await deliver(service, database, created(charged))  # a re-publish charges nothing
    refused = created(declined)
    refused.payment_method = "pm_card_chargeDeclined"
    await deliver(service, database, refused)
    assert counted_since(before) == {"succeeded": 1, "failed": 1, "refunded": 0}

    await deliver(service, database, cancelled(charged))
    await deliver(service, database, cancelled(charged))  # refunded once
    await deliver(service, database, cancelled(declined))  # never charged: nothing to refund
    # Cancelled before its charge: a FAILED row, but no charge and no event to count.
    await deliver(service, database, cancelled(never))
    await deliver(service, database, created(never))
    assert counted_since(before) == {"succeeded": 1, "failed": 1, "refunded": 1}


async def test_a_charge_rolled_back_is_not_counted(
    database_on_each_backend: DatabaseFactory,
) -> None:
    database = await database_on_each_backend(metadata)
    service = await payments_on(database)
    before = payments()

    event = created(new_id())

    async def charged_then_failed() -> None:
        async with service.unit_of_work() as uow:
            await service.on_order_created(uow, event, Envelope(event_type_of(event)))
            raise RuntimeError("failed before the commit")

    with pytest.raises(RuntimeError, match="before the commit"):
        await charged_then_failed()

    assert counted_since(before) == {"succeeded": 0, "failed": 0, "refunded": 0}
    await deliver(service, database, event)  # delivered again, it is charged and counted
    assert counted_since(before) == {"succeeded": 1, "failed": 0, "refunded": 0}
