"""An order asks the catalog once: the reservation takes its stock and prices it in one call.
What a refused order is told is as before, when the products were looked at first: a product
no longer sold, or items in two currencies, with every unit of stock back."""

from __future__ import annotations

import uuid

import grpc
import pytest
from prometheus_client import REGISTRY

from ecommerce.common.v1 import money_pb2
from ecommerce.order.v1 import order_pb2
from ecommerce.product.v1 import product_pb2
from tests.product_service.conftest import violations
from tests.saga.conftest import ADDRESS, Saga, bearer

pytestmark = pytest.mark.integration


def served(method: str) -> float:
    """Calls of the product service's `method` answered in this process (the services run in
    the test's process)."""
    labels = {
        "grpc_type": "unary",
        "grpc_service": "ecommerce.product.v1.ProductService",
        "grpc_method": method,
    }
    return REGISTRY.get_sample_value("grpc_server_started_total", labels) or 0.0


async def refused(saga: Saga, *lines: tuple[str, int]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await saga.orders.CreateOrder(
            order_pb2.CreateOrderRequest(
                idempotency_key=uuid.uuid4().hex,
                items=[order_pb2.LineItem(product_id=p, quantity=q) for p, q in lines],
                payment_method="pm_card_visa",
                shipping_address=ADDRESS,
            ),
            metadata=bearer(saga.customer),
        )
    return raised.value


async def test_an_order_is_priced_by_the_reservation_alone(saga: Saga) -> None:
    product = await saga.new_product(stock=10, price_minor=2_500, name="Kite")
    looked, reserved = served("GetProduct"), served("ReserveStock")
    order = await saga.place(product, 3, key=uuid.uuid4().hex)
    assert (served("GetProduct"), served("ReserveStock")) == (looked, reserved + 1)
    [item] = order.items
    assert (item.product_name, item.unit_price.amount_minor, item.quantity) == ("Kite", 2_500, 3)
    assert order.total.amount_minor == 7_500
    assert await saga.stock_of(product) == 7


async def test_a_product_no_longer_sold_is_refused_as_before(saga: Saga) -> None:
    kept = await saga.new_product(stock=5, name="Kept")
    gone = await saga.new_product(stock=5, name="Gone")
    await saga.products.DeleteProduct(
        product_pb2.DeleteProductRequest(id=gone), metadata=bearer(saga.seller)
    )
    error = await refused(saga, (kept, 1), (gone, 1))
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert error.details() == "No longer sold: Gone."
    assert (await saga.stock_of(kept), await saga.stock_of(gone)) == (5, 5)


async def test_items_in_two_currencies_are_refused_with_the_stock_back(saga: Saga) -> None:
    dollars = await saga.new_product(stock=5, name="Dollars")
    euros = await saga.products.CreateProduct(
        product_pb2.CreateProductRequest(
            product=product_pb2.Product(
                name="Euros",
                description="A thing",
                price=money_pb2.Money(amount_minor=900, currency_code="EUR"),
                stock=5,
            )
        ),
        metadata=bearer(saga.seller),
    )
    error = await refused(saga, (dollars, 2), (euros.id, 1))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == {"items": "all items must be priced in one currency"}
    # Reserved, then found priced in two currencies: given back.
    assert (await saga.stock_of(dollars), await saga.stock_of(euros.id)) == (5, 5)


async def test_an_unknown_product_beside_a_shortage_is_still_a_field_error(saga: Saga) -> None:
    scarce = await saga.new_product(stock=1, name="Scarce")
    error = await refused(saga, (scarce, 2), ("0" * 32, 1))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    [(field, problem)] = violations(error).items()
    assert field.endswith(".product_id") and problem == "no such product"
    assert await saga.stock_of(scarce) == 1
