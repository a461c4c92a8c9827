"""Every change to an order is announced on Redis once committed: an owner's cancel, the
saga's moves (paid, cancelled for a failed payment) once their event's transaction commits;
and a heartbeat. (That a change made through the gateway is announced before it answers,
so that the caller's next read shows it, is `tests/e2e/test_gateway_answer_cache.py`.)"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from ecommerce.order.v1 import order_pb2
from meshkit.caching import invalidation
from order_service.app import DEFINITION as ORDER
from payment_service.app import DEFINITION as PAYMENT
from tests.conftest import REDIS_URL
from tests.saga.conftest import Saga, bearer
from tests.support import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def announcements() -> AsyncIterator[PubSub]:
    redis = Redis.from_url(REDIS_URL)
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(invalidation.orders_channel(invalidation.database_of(REDIS_URL)))
        await pubsub.get_message(timeout=5)  # the subscription's confirmation
        yield pubsub
    await redis.aclose()


async def heard(pubsub: PubSub, wanted: str, timeout: float = 10) -> None:
    """Until `wanted` is announced (other orders' and heartbeats pass by)."""

    async def arrived() -> bool:
        message = await pubsub.get_message(timeout=0.2)
        return message is not None and message["data"] == wanted.encode()

    await eventually(arrived, timeout=timeout, interval=0, message=f"{wanted!r} announced")


async def test_an_owners_cancel_is_announced(saga_base: Saga, announcements: PubSub) -> None:
    # No payment service: the order stays PENDING.
    await saga_base.start("order_service", ORDER, redis_url=REDIS_URL)
    order = await saga_base.place(await saga_base.new_product(stock=2), key="cancel-1")
    await saga_base.orders.CancelOrder(
        order_pb2.CancelOrderRequest(id=order.id), metadata=bearer(saga_base.customer)
    )
    await heard(announcements, invalidation.order_changed(order.id), timeout=5)


async def test_the_saga_announces_each_move_it_commits(
    saga_base: Saga, announcements: PubSub
) -> None:
    await saga_base.start("order_service", ORDER, redis_url=REDIS_URL)
    await heard(announcements, invalidation.HEARTBEAT)
    order = await saga_base.place(await saga_base.new_product(stock=2), key="paid-1")
    await saga_base.start("payment_service", PAYMENT)
    await heard(announcements, invalidation.order_changed(order.id))
    assert await saga_base.order_status(order.id) == order_pb2.ORDER_STATUS_PAID

    declined = await saga_base.place(
        await saga_base.new_product(stock=2), key="declined-1", method="pm_card_chargeDeclined"
    )
    await heard(announcements, invalidation.order_changed(declined.id))
    assert await saga_base.order_status(declined.id) == order_pb2.ORDER_STATUS_CANCELLED
