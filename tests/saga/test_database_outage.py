"""PostgreSQL going away for a few seconds under a steady flow of orders, as a restart does:
every answer is success or a retryable UNAVAILABLE, and a client retrying with its key gets
each order placed and paid once."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from sqlalchemy.engine import make_url

from ecommerce.order.v1 import order_pb2
from localmesh.faultproxy import FaultyProxy, Mode
from order_service.app import DEFINITION as ORDER
from payment_service.app import DEFINITION as PAYMENT
from tests.conftest import POSTGRES_ADMIN_DSN
from tests.saga.conftest import Saga
from tests.saga.test_saga import payment_count

ORDERS = 30
RATE_PER_SECOND = 10
OUTAGE_SECONDS = 2.5
# What a client retries with the same Idempotency-Key: the server said nothing was done.
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


def _through(proxy: FaultyProxy, url: str) -> str:
    """`url`, its server reached through `proxy`."""
    return str(make_url(url).set(host="127.0.0.1", port=proxy.port))


@pytest.fixture
async def postgres_proxy() -> AsyncIterator[FaultyProxy]:
    url = make_url(POSTGRES_ADMIN_DSN)
    async with FaultyProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        yield proxy


# The proxy first: it is closed after the services that use it have stopped.
async def test_a_database_restart_under_load_loses_no_order_and_is_retryable(
    postgres_proxy: FaultyProxy, saga_base: Saga
) -> None:
    saga = saga_base
    await saga.start(
        "order_service",
        ORDER,
        database_url=_through(postgres_proxy, saga.databases["order_service"]),
    )
    await saga.start(
        "payment_service",
        PAYMENT,
        database_url=_through(postgres_proxy, saga.databases["payment_service"]),
    )
    product = await saga.new_product(stock=ORDERS)
    answers: list[grpc.StatusCode] = []
    refused: list[str] = []  # answers that are neither success nor retryable

    async def place_until_answered(key: str) -> str:
        """As a client does: the same key again while the answer is retryable, for a while."""
        give_up = time.monotonic() + 60
        while True:
            try:
                order = await saga.place(product, 1, key=key)
            except grpc.aio.AioRpcError as error:
                answers.append(error.code())
                if error.code() not in RETRYABLE or time.monotonic() > give_up:
                    refused.append(f"{error.code()}: {error.details()}")
                    return ""
                await asyncio.sleep(0.2)
                continue
            answers.append(grpc.StatusCode.OK)
            return order.id

    async def outage() -> None:
        await asyncio.sleep(ORDERS / RATE_PER_SECOND / 3)
        postgres_proxy.set_mode(Mode.RESET)
        await asyncio.sleep(OUTAGE_SECONDS)
        postgres_proxy.set_mode(Mode.FORWARD)

    cut = asyncio.create_task(outage())
    placing = []
    started = time.monotonic()
    for index in range(ORDERS):
        await asyncio.sleep(max(0.0, started + index / RATE_PER_SECOND - time.monotonic()))
        placing.append(asyncio.create_task(place_until_answered(uuid.uuid4().hex)))
    order_ids = await asyncio.gather(*placing)
    await cut

    assert not refused  # only success, or an answer a client may retry
    assert grpc.StatusCode.UNAVAILABLE in answers  # the outage was met
    assert len(set(order_ids)) == ORDERS
    for order_id in order_ids:
        await saga.wait_status(order_id, order_pb2.ORDER_STATUS_PAID, timeout=60)
    assert await payment_count(saga) == ORDERS
    assert await saga.stock_of(product) == 0
