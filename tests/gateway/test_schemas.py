"""Conversions of the services' messages into the REST bodies: each document is its model's
JSON, byte for byte, and passes on what a service says."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from google.protobuf import timestamp_pb2
from pydantic import BaseModel

from ecommerce.common.v1 import money_pb2
from ecommerce.order.v1 import order_pb2
from ecommerce.product.v1 import product_pb2
from gateway.responses import Document
from gateway.schemas.common import rfc3339
from gateway.schemas.orders import Order, OrderList, order_document, order_list_document
from gateway.schemas.products import (
    Product,
    ProductList,
    product_document,
    product_list_document,
)


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


def _body(document: dict[str, Any]) -> bytes:
    return bytes(Document(document).body)


def _as_model_says(model: type[BaseModel], document: dict[str, Any]) -> bytes:
    """The JSON FastAPI would have written for the route's model."""
    return model.model_validate(document).model_dump_json().encode()


def test_a_product_is_its_models_json_byte_for_byte() -> None:
    product = _product(1)
    product.description = 'Quotes " and \\ and ünïcödé, <b>tags</b>\n'
    product.archived = True
    product.update_time.FromDatetime(datetime(2026, 12, 5, 8, 30, 1, tzinfo=UTC))
    document = product_document(product)
    assert _body(document) == _as_model_says(Product, document)
    assert list(document) == list(Product.model_fields)


def test_a_page_of_products_is_each_product_as_it_stands_alone() -> None:
    page = product_pb2.ListProductsResponse(
        products=[_product(1), _product(2)], next_page_token="next"
    )
    document = product_list_document(page)
    assert document["products"] == [product_document(_product(1)), product_document(_product(2))]
    assert _body(document) == _as_model_says(ProductList, document)
    body = ProductList.model_validate_json(_body(document)).model_dump(mode="json")
    assert body["next_page_token"] == "next"
    assert body["products"][0]["create_time"] == "2026-12-04T16:00:00.250000Z"
    assert body["products"][0]["update_time"] is None
    assert body["products"][0]["price"] == {"amount_minor": 1999, "currency_code": "USD"}


def test_what_a_service_says_is_passed_on_as_it_is() -> None:
    # Input rules (at most 10^12, three capitals) are for clients, not for the services' words.
    product = _product(1)
    product.price.amount_minor = 10**13
    product.price.currency_code = "usd"
    page = product_list_document(product_pb2.ListProductsResponse(products=[product]))
    assert b'"price":{"amount_minor":10000000000000,"currency_code":"usd"}' in _body(page)


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


def test_an_order_and_a_page_of_orders_are_their_models_json_byte_for_byte() -> None:
    page = order_pb2.ListOrdersResponse(next_page_token="next")
    for shipped in (False, True):
        order = page.orders.add()
        order.CopyFrom(_order(shipped=shipped))
        # Within the input rules, which validating the model applies to money.
        order.items[0].unit_price.amount_minor = 1999
        order.items[0].line_total.amount_minor = 3998
        order.total.amount_minor = 3998
        document = order_document(order)
        assert _body(document) == _as_model_says(Order, document)
        assert list(document) == list(Order.model_fields)
    listed = order_list_document(page)
    assert _body(listed) == _as_model_says(OrderList, listed)


def test_an_order_converts_whole_with_its_shipment_when_shipped() -> None:
    paid: dict[str, Any] = json.loads(_body(order_document(_order(shipped=False))))
    assert paid["status"] == "PAID" and paid["shipment"] is None
    assert paid["items"][0]["line_total"] == {"amount_minor": 10**13, "currency_code": "USD"}
    assert paid["total"]["amount_minor"] == 10**13  # a total past the input limit passes on
    assert paid["shipping_address"]["line2"] == "" and paid["create_time"] == "2026-12-04T16:00:00Z"

    shipped: dict[str, Any] = json.loads(_body(order_document(_order(shipped=True))))
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
    document = order_list_document(page)
    assert document["orders"] == [order_document(order) for order in page.orders]
    assert document["next_page_token"] == "next"
    assert json.loads(_body(document))["orders"][1]["status"] == "SHIPPED"
