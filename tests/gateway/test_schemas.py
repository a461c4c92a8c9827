"""Conversions of the services' messages into the REST bodies."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf import timestamp_pb2

from ecommerce.common.v1 import money_pb2
from ecommerce.order.v1 import order_pb2
from ecommerce.product.v1 import product_pb2
from gateway.schemas.common import rfc3339
from gateway.schemas.orders import Order, OrderList
from gateway.schemas.products import Product, ProductList


def test_an_unset_timestamp_is_null() -> None:
    assert rfc3339(timestamp_pb2.Timestamp()) is None


def _product(number: int) -> product_pb2.Product:
    product = product_pb2.Product(
        id=f"p{number}",
        name=f"Product {number}",
        price=money_pb2.Money(amount_minor=1999, currency_code="USD"),
        stock=number,
        seller_id="s1",
    )
    product.create_time.FromDatetime(datetime(2026, 12, 4, 16, 0, 0, 250_000, tzinfo=UTC))
    return product


def test_a_page_of_products_is_each_product_as_it_stands_alone() -> None:
    page = product_pb2.ListProductsResponse(
        products=[_product(1), _product(2)], next_page_token="next"
    )
    listed = ProductList.from_proto(page)
    assert listed.products == [Product.from_proto(_product(1)), Product.from_proto(_product(2))]
    assert listed.next_page_token == "next"
    body = listed.model_dump(mode="json")["products"][0]
    assert body["create_time"] == "2026-12-04T16:00:00.250000Z"
    assert body["update_time"] is None
    assert body["price"] == {"amount_minor": 1999, "currency_code": "USD"}


def test_what_a_service_says_is_passed_on_as_it_is() -> None:
    # Input rules (at most 10^12, three capitals) are for clients, not for the services' words.
    product = _product(1)
    product.price.amount_minor = 10**13
    product.price.currency_code = "usd"
    page = ProductList.from_proto(product_pb2.ListProductsResponse(products=[product]))
    assert page.products[0].price.amount_minor == 10**13
    assert page.products[0].price.currency_code == "usd"


def _order(*, shipped: bool) -> order_pb2.Order:
    order = order_pb2.Order(
        id="o1",
        user_id="u1",
        status=order_pb2.ORDER_STATUS_SHIPPED if shipped else order_pb2.ORDER_STATUS_PAID,
        total=money_pb2.Money(amount_minor=10**13, currency_code="USD"),
        payment_method="pm_card_visa",
        shipping_address=order_pb2.Address(
            recipient="Ada Lovelace", line1="12 St James's Square", city="London",
            country_code="GB",
        ),
    )  # fmt: skip
    order.items.add(
        product_id="p1",
        product_name="Analytical Engine",
        quantity=2,
        unit_price=money_pb2.Money(amount_minor=5 * 10**12, currency_code="USD"),
        line_total=money_pb2.Money(amount_minor=10**13, currency_code="USD"),
    )
    order.create_time.FromDatetime(datetime(2026, 12, 4, 16, 0, tzinfo=UTC))
    if shipped:
        order.shipment.carrier = "DHL"
        order.shipment.tracking_number = "JD0001"
        order.shipment.ship_time.FromDatetime(datetime(2026, 12, 5, 9, 0, tzinfo=UTC))
    return order


def test_an_order_converts_whole_with_its_shipment_when_shipped() -> None:
    paid = Order.from_proto(_order(shipped=False)).model_dump(mode="json")
    assert paid["status"] == "PAID" and paid["shipment"] is None
    assert paid["items"][0]["line_total"] == {"amount_minor": 10**13, "currency_code": "USD"}
    assert paid["total"]["amount_minor"] == 10**13  # a total past the input limit passes on
    assert paid["shipping_address"]["line2"] == "" and paid["create_time"] == "2026-12-04T16:00:00Z"

    shipped = Order.from_proto(_order(shipped=True)).model_dump(mode="json")
    assert shipped["status"] == "SHIPPED"
    assert shipped["shipment"] == {
        "carrier": "DHL",
        "tracking_number": "JD0001",
        "ship_time": "2026-12-05T09:00:00Z",
    }


def test_a_page_of_orders_is_each_order_as_it_stands_alone() -> None:
    page = order_pb2.ListOrdersResponse(
        orders=[_order(shipped=False), _order(shipped=True)], next_page_token="next"
    )
    listed = OrderList.from_proto(page)
    assert listed.orders == [Order.from_proto(order) for order in page.orders]
    assert listed.next_page_token == "next"
