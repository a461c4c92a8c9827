"""The order saga through real RabbitMQ and PostgreSQL, and the faults it must survive."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from sqlalchemy import func, select, text

from ecommerce.common.v1 import money_pb2
from ecommerce.events.v1 import events_pb2
from ecommerce.order.v1 import order_pb2, order_pb2_grpc
from ecommerce.payment.v1 import payment_pb2
from ecommerce.user.v1 import user_pb2
from localmesh.faultproxy import FaultyProxy, Mode
from meshkit.data import Database
from order_service.app import DEFINITION as ORDER
from order_service.saga import Saga as OrderSaga
from payment_service.app import DEFINITION as PAYMENT
from payment_service.models import Payment
from tests.conftest import AMQP_URL
from tests.saga.conftest import (
    ADDRESS,
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    OrderProcess,
    Saga,
    bearer,
    dead_letters,
    publish_event,
)
from tests.support import eventually, free_port

pytestmark = pytest.mark.integration

PENDING, PAID, SHIPPED, CANCELLED = (
    order_pb2.ORDER_STATUS_PENDING,
    order_pb2.ORDER_STATUS_PAID,
    order_pb2.ORDER_STATUS_SHIPPED,
    order_pb2.ORDER_STATUS_CANCELLED,
)


def key() -> str:
    return uuid.uuid4().hex


async def payment_count(saga: Saga, order_id: str | None = None) -> int:
    async with (
        Database(saga.databases["payment_service"]) as database,
        database.session() as session,
    ):
        query = select(func.count()).select_from(Payment)
        if order_id is not None:
            query = query.where(Payment.order_id == order_id)
        return int(await session.scalar(query) or 0)


async def expect_code(code: grpc.StatusCode, call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    assert raised.value.code() is code, raised.value.details()
    return raised.value


async def test_order_is_paid_and_confirmed(saga: Saga) -> None:
    product = await saga.new_product(stock=10, price_minor=2_500)
    order = await saga.place(product, 2, key=key())
    assert order.status == PENDING
    assert order.total.amount_minor == 5_000
    assert order.items[0].product_name == "Widget"
    await saga.wait_status(order.id, PAID)
    payment = await saga.payments.GetPayment(
        payment_pb2.GetPaymentRequest(order_id=order.id), metadata=bearer(saga.customer)
    )
    assert payment.status == payment_pb2.PAYMENT_STATUS_SUCCEEDED
    assert payment.amount.amount_minor == 5_000
    assert await saga.stock_of(product) == 8


@pytest.mark.parametrize(
    ("method", "code"),
    [
        ("pm_card_chargeDeclined", "card_declined"),
        ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"),
    ],
)
async def test_declined_card_cancels_and_restores_stock(saga: Saga, method: str, code: str) -> None:
    product = await saga.new_product(stock=3)
    order = await saga.place(product, 2, key=key(), method=method)
    assert await saga.stock_of(product) == 1
    await saga.wait_status(order.id, CANCELLED)
    assert await saga.stock_of(product) == 3
    payment = await saga.payments.GetPayment(
        payment_pb2.GetPaymentRequest(order_id=order.id), metadata=bearer(saga.customer)
    )
    assert payment.status == payment_pb2.PAYMENT_STATUS_FAILED
    assert payment.failure_code == code
    cancelled = await saga.orders.GetOrder(
        order_pb2.GetOrderRequest(id=order.id), metadata=bearer(saga.customer)
    )
    assert "payment failed" in cancelled.cancel_reason


async def test_amount_over_the_limit_is_declined(saga: Saga) -> None:
    product = await saga.new_product(stock=5, price_minor=600_000)
    order = await saga.place(product, 2, key=key())
    await saga.wait_status(order.id, CANCELLED)
    payment = await saga.payments.GetPayment(
        payment_pb2.GetPaymentRequest(order_id=order.id), metadata=bearer(saga.customer)
    )
    assert payment.failure_code == "amount_too_large"


async def test_same_key_same_body_is_the_same_order(saga: Saga) -> None:
    product = await saga.new_product(stock=10)
    order_key = key()
    first = await saga.place(product, 1, key=order_key)
    again = await saga.place(product, 1, key=order_key)
    assert again.id == first.id
    concurrent = await asyncio.gather(*(saga.place(product, 1, key=order_key) for _ in range(5)))
    assert {order.id for order in concurrent} == {first.id}
    await expect_code(grpc.StatusCode.ALREADY_EXISTS, saga.place(product, 2, key=order_key))
    await saga.wait_status(first.id, PAID)
    assert await saga.stock_of(product) == 9
    assert await payment_count(saga, first.id) == 1


async def test_concurrent_first_requests_with_one_key_make_one_order(saga: Saga) -> None:
    product = await saga.new_product(stock=10)
    order_key = key()
    orders = await asyncio.gather(*(saga.place(product, 1, key=order_key) for _ in range(5)))
    assert len({order.id for order in orders}) == 1
    await saga.wait_status(orders[0].id, PAID)
    # Losers of the race released what they reserved: only one unit left the shelf.
    assert await saga.stock_of(product) == 9


async def test_insufficient_stock_is_409_and_reserves_nothing(saga: Saga) -> None:
    plenty = await saga.new_product(stock=10, name="Plenty")
    scarce = await saga.new_product(stock=1, name="Scarce")
    error = await expect_code(
        grpc.StatusCode.FAILED_PRECONDITION,
        saga.orders.CreateOrder(
            order_pb2.CreateOrderRequest(
                idempotency_key=key(),
                items=[
                    order_pb2.LineItem(product_id=plenty, quantity=3),
                    order_pb2.LineItem(product_id=scarce, quantity=2),
                ],
                payment_method="pm_card_visa",
                shipping_address=ADDRESS,
            ),
            metadata=bearer(saga.customer),
        ),
    )
    assert "stock" in (error.details() or "").lower()
    assert await saga.stock_of(plenty) == 10
    assert await saga.stock_of(scarce) == 1
    listed = await saga.orders.ListOrders(
        order_pb2.ListOrdersRequest(), metadata=bearer(saga.customer)
    )
    assert list(listed.orders) == []


async def test_unknown_product_is_a_field_error(saga: Saga) -> None:
    await expect_code(grpc.StatusCode.INVALID_ARGUMENT, saga.place("no-such-product", 1, key=key()))


async def test_owner_cancels_a_pending_order_and_stock_returns(saga_base: Saga) -> None:
    # No payment service: the order stays PENDING for as long as the test needs.
    await saga_base.start("order_service", ORDER)
    saga = saga_base
    product = await saga.new_product(stock=4)
    order = await saga.place(product, 3, key=key())
    assert await saga.stock_of(product) == 1
    _, stranger = await saga.new_user("stranger@example.com")
    await expect_code(
        grpc.StatusCode.NOT_FOUND,
        saga.orders.CancelOrder(
            order_pb2.CancelOrderRequest(id=order.id), metadata=bearer(stranger)
        ),
    )
    await expect_code(
        grpc.StatusCode.NOT_FOUND,
        saga.orders.GetOrder(order_pb2.GetOrderRequest(id=order.id), metadata=bearer(stranger)),
    )
    cancelled = await saga.orders.CancelOrder(
        order_pb2.CancelOrderRequest(id=order.id, reason="changed my mind"),
        metadata=bearer(saga.customer),
    )
    assert cancelled.status == CANCELLED
    assert await saga.stock_of(product) == 4
    await expect_code(
        grpc.StatusCode.FAILED_PRECONDITION,
        saga.orders.CancelOrder(
            order_pb2.CancelOrderRequest(id=order.id), metadata=bearer(saga.customer)
        ),
    )
    # A charge that comes late (the payment service starts now) does not revive the order:
    # the money goes back, and the order's timeline says so. (The payment service may also
    # handle the order.cancelled first, and then never charge it.)
    await saga.start("payment_service", PAYMENT)
    settled: list[payment_pb2.Payment] = []

    async def refunded_or_never_charged() -> bool:
        try:
            payment = await saga.payments.GetPayment(
                payment_pb2.GetPaymentRequest(order_id=order.id), metadata=bearer(saga.customer)
            )
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.NOT_FOUND:
                return False  # not handled yet
            raise
        if payment.status == payment_pb2.PAYMENT_STATUS_REFUNDED or (
            payment.failure_code == "order_cancelled"
        ):
            settled.append(payment)
            return True
        return False

    await eventually(refunded_or_never_charged, timeout=20, message="no money kept")
    assert await payment_count(saga, order.id) == 1
    if settled[0].status == payment_pb2.PAYMENT_STATUS_REFUNDED:

        async def on_the_timeline() -> bool:
            timeline = await saga.orders.GetOrderTimeline(
                order_pb2.GetOrderTimelineRequest(order_id=order.id),
                metadata=bearer(saga.customer),
            )
            return "payment.refunded" in [event.type for event in timeline.events]

        await eventually(on_the_timeline, timeout=20, message="the refund on the timeline")
    assert await saga.order_status(order.id) == CANCELLED


async def test_an_order_cancelled_while_its_charge_goes_through_is_refunded(
    saga_base: Saga, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The order service hears of the payment only after the owner cancelled.
    cancelled = asyncio.Event()
    on_payment_succeeded = OrderSaga.on_payment_succeeded

    async def after_the_cancel(self: OrderSaga, *args: Any) -> None:
        await cancelled.wait()
        await on_payment_succeeded(self, *args)

    monkeypatch.setattr(OrderSaga, "on_payment_succeeded", after_the_cancel)
    await saga_base.start("order_service", ORDER)
    await saga_base.start("payment_service", PAYMENT)
    saga = saga_base
    product = await saga.new_product(stock=4)
    order = await saga.place(product, 2, key=key())

    async def payment_status() -> payment_pb2.PaymentStatus.ValueType | None:
        try:
            payment = await saga.payments.GetPayment(
                payment_pb2.GetPaymentRequest(order_id=order.id), metadata=bearer(saga.customer)
            )
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return payment.status

    async def charged() -> bool:
        return await payment_status() == payment_pb2.PAYMENT_STATUS_SUCCEEDED

    await eventually(charged, timeout=20, message="the order is charged")
    await saga.orders.CancelOrder(
        order_pb2.CancelOrderRequest(id=order.id), metadata=bearer(saga.customer)
    )
    cancelled.set()

    async def refunded() -> bool:
        return await payment_status() == payment_pb2.PAYMENT_STATUS_REFUNDED

    await eventually(refunded, timeout=20, message="the charge is refunded")

    async def on_the_timeline() -> bool:
        timeline = await saga.orders.GetOrderTimeline(
            order_pb2.GetOrderTimelineRequest(order_id=order.id), metadata=bearer(saga.customer)
        )
        return "payment.refunded" in [event.type for event in timeline.events]

    await eventually(on_the_timeline, timeout=20, message="the refund on the order's timeline")
    assert await saga.order_status(order.id) == CANCELLED
    assert await saga.stock_of(product) == 4


async def test_cancelling_a_paid_order_is_409(saga: Saga) -> None:
    product = await saga.new_product(stock=2)
    order = await saga.place(product, 1, key=key())
    await saga.wait_status(order.id, PAID)
    error = await expect_code(
        grpc.StatusCode.FAILED_PRECONDITION,
        saga.orders.CancelOrder(
            order_pb2.CancelOrderRequest(id=order.id), metadata=bearer(saga.customer)
        ),
    )
    assert "PAID" in (error.details() or "")


async def test_only_a_paid_order_is_shipped_and_only_by_its_seller(saga_base: Saga) -> None:
    # No payment service at first: the order stays PENDING for as long as the test needs.
    await saga_base.start("order_service", ORDER)
    saga = saga_base
    _, other_seller = await saga.new_user("other-seller@example.com", user_pb2.ROLE_SELLER)
    order = await saga.place(await saga.new_product(stock=2), 1, key=key())

    def ship(token: str) -> Awaitable[order_pb2.Order]:
        return saga.orders.ShipOrder(
            order_pb2.ShipOrderRequest(id=order.id, carrier="DHL", tracking_number="JD0146"),
            metadata=bearer(token),
        )

    error = await expect_code(grpc.StatusCode.FAILED_PRECONDITION, ship(saga.seller))
    assert "PENDING" in (error.details() or "")
    await saga.start("payment_service", PAYMENT)
    await saga.wait_status(order.id, PAID)
    await expect_code(grpc.StatusCode.PERMISSION_DENIED, ship(saga.customer))
    await expect_code(grpc.StatusCode.PERMISSION_DENIED, ship(other_seller))
    shipped = await ship(saga.seller)
    assert isinstance(shipped, order_pb2.Order)
    assert shipped.status == SHIPPED
    assert (shipped.shipment.carrier, shipped.shipment.tracking_number) == ("DHL", "JD0146")
    error = await expect_code(grpc.StatusCode.FAILED_PRECONDITION, ship(saga.seller))
    assert "SHIPPED" in (error.details() or "")


@pytest.mark.parametrize("down", ["product_service_addr", "user_service_addr"])
async def test_upstream_down_is_unavailable_and_no_order_is_made(
    saga_base: Saga, down: str
) -> None:
    product = await saga_base.new_product(stock=5)
    dead = f"127.0.0.1:{free_port()}"
    await saga_base.start("order_service", ORDER, rpc_timeout_seconds=1.0, **{down: dead})
    error = await expect_code(grpc.StatusCode.UNAVAILABLE, saga_base.place(product, 1, key=key()))
    assert "unavailable" in (error.details() or "")
    assert await saga_base.stock_of(product) == 5
    async with (
        Database(saga_base.databases["order_service"]) as database,
        database.session() as session,
    ):
        assert await session.scalar(text("SELECT count(*) FROM orders")) == 0


async def test_orders_are_accepted_while_the_broker_is_down(
    saga_base: Saga, broker_proxy: FaultyProxy
) -> None:
    await saga_base.start(
        "order_service", ORDER, amqp_url=f"amqp://guest:guest@{broker_proxy.endpoint}/"
    )
    await saga_base.start("payment_service", PAYMENT)
    saga = saga_base
    product = await saga.new_product(stock=20)
    broker_proxy.set_mode(Mode.RESET)
    orders = [await saga.place(product, 1, key=key()) for _ in range(5)]
    assert {order.status for order in orders} == {PENDING}
    broker_proxy.set_mode(Mode.FORWARD)
    for order in orders:
        await saga.wait_status(order.id, PAID, timeout=40)
    assert await payment_count(saga) == 5


async def test_a_crash_between_commit_and_publish_loses_nothing(
    saga_base: Saga, broker_proxy: FaultyProxy
) -> None:
    saga = saga_base
    await saga.start("payment_service", PAYMENT)
    product = await saga.new_product(stock=20)
    first = OrderProcess(saga, f"amqp://guest:guest@{broker_proxy.endpoint}/")
    await first.start()
    try:
        broker_proxy.set_mode(
            Mode.RESET
        )  # the relay cannot publish: every order stays in the outbox
        orders = [await saga.place(product, 1, key=key()) for _ in range(3)]
    finally:
        await first.kill()  # SIGKILL: no shutdown, no flush
    broker_proxy.set_mode(Mode.FORWARD)
    second = OrderProcess(saga, AMQP_URL)
    await second.start()
    try:
        for order in orders:
            await saga.wait_status(order.id, PAID, timeout=40)
    finally:
        await second.stop()
    for order in orders:
        assert await payment_count(saga, order.id) == 1


async def test_a_duplicate_event_changes_nothing(saga: Saga) -> None:
    product = await saga.new_product(stock=5)
    order = await saga.place(product, 1, key=key())
    await saga.wait_status(order.id, PAID)
    # The same order.created again, under a new message id: the payment service's unique
    # order id keeps it to one payment. Then the very same message twice: the inbox drops it.
    event = events_pb2.OrderCreated(
        order_id=order.id,
        user_id=saga.customer_id,
        total=money_pb2.Money(amount_minor=order.total.amount_minor, currency_code="USD"),
        payment_method="pm_card_visa",
    ).SerializeToString()
    message_id = uuid.uuid4().hex
    for mid in (uuid.uuid4().hex, message_id, message_id):
        await publish_event(saga, "order.created", event, mid, order.id)
    succeeded = events_pb2.PaymentSucceeded(
        payment_id="x", order_id=order.id, user_id=saga.customer_id
    )
    for _ in range(2):
        await publish_event(
            saga, "payment.succeeded", succeeded.SerializeToString(), uuid.uuid4().hex, order.id
        )
    sentinel = await saga.place(product, 1, key=key())
    await saga.wait_status(sentinel.id, PAID)  # everything published before it was handled
    assert await payment_count(saga, order.id) == 1
    timeline = await saga.orders.GetOrderTimeline(
        order_pb2.GetOrderTimelineRequest(order_id=order.id), metadata=bearer(saga.customer)
    )
    assert [event.type for event in timeline.events].count("order.confirmed") == 1
    assert await saga.order_status(order.id) == PAID


async def test_poison_messages_end_in_the_dead_letter_queue(saga: Saga) -> None:
    # Unreadable: dead-lettered at once. Readable but failing every time (a payment for an
    # order that does not exist): retried with backoff, then dead-lettered.
    await publish_event(saga, "order.created", b"\xff not protobuf", uuid.uuid4().hex, "poison")
    ghost = events_pb2.PaymentSucceeded(payment_id="p", order_id="no-such-order", user_id="u")
    await publish_event(
        saga, "payment.succeeded", ghost.SerializeToString(), uuid.uuid4().hex, "ghost"
    )
    product = await saga.new_product(stock=5)
    order = await saga.place(product, 1, key=key())
    await saga.wait_status(order.id, PAID)  # later messages still flow

    async def dead_lettered() -> bool:
        return (
            await dead_letters(saga, "payment_service") >= 1
            and await dead_letters(saga, "order_service") >= 1
        )

    await eventually(
        dead_lettered, timeout=30, interval=0.2, message="both poison messages dead-lettered"
    )


async def test_two_replicas_of_each_pay_every_order_once(saga_base: Saga) -> None:
    saga = saga_base
    await saga.start("order_service", ORDER)
    await saga.start("order_service_2", ORDER, database_url=saga.databases["order_service"])
    await saga.start("payment_service", PAYMENT)
    await saga.start("payment_service_2", PAYMENT, database_url=saga.databases["payment_service"])
    product = await saga.new_product(stock=100)
    stubs = [
        saga.orders,
        order_pb2_grpc.OrderServiceStub(saga.channel("order_service_2")),
    ]
    orders = await asyncio.gather(
        *(
            stubs[i % 2].CreateOrder(
                order_pb2.CreateOrderRequest(
                    idempotency_key=key(),
                    items=[order_pb2.LineItem(product_id=product, quantity=1)],
                    payment_method="pm_card_visa",
                    shipping_address=ADDRESS,
                ),
                metadata=bearer(saga.customer),
            )
            for i in range(20)
        )
    )
    for order in orders:
        await saga.wait_status(order.id, PAID, timeout=40)
    assert await payment_count(saga) == 20
    assert await saga.stock_of(product) == 80


async def test_a_demoted_sellers_unexpired_token_ships_nothing(saga: Saga) -> None:
    seller_id, seller = await saga.new_user("demoted-seller@example.com", user_pb2.ROLE_SELLER)
    saga.seller, own_seller = seller, saga.seller
    try:
        product = await saga.new_product(stock=2)
    finally:
        saga.seller = own_seller
    order = await saga.place(product, 1, key=key())
    await saga.wait_status(order.id, PAID)
    admin = await saga.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    await saga.users.UpdateUser(
        user_pb2.UpdateUserRequest(
            user=user_pb2.User(id=seller_id, role=user_pb2.ROLE_CUSTOMER),
            update_mask=field_mask_pb2.FieldMask(paths=["role"]),
        ),
        metadata=bearer(admin),
    )
    await expect_code(
        grpc.StatusCode.PERMISSION_DENIED,
        saga.orders.ShipOrder(
            order_pb2.ShipOrderRequest(id=order.id, carrier="DHL", tracking_number="JD0147"),
            metadata=bearer(seller),
        ),
    )
    assert await saga.order_status(order.id) == PAID
