"""Conversions of the services' messages into the REST bodies."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.protobuf import timestamp_pb2

from ecommerce.common.v1 import money_pb2
from ecommerce.product.v1 import product_pb2
from gateway.schemas.common import rfc3339
from gateway.schemas.products import Product, ProductList


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [
        (1_764_866_183, 123_456_789),  # nanoseconds truncated to microseconds
        (1_764_866_183, 0),
        (0, 1_000),
        (-86_400, 999_999_999),  # before 1970
        (253_402_300_799, 999_999_000),  # the last second of year 9999
    ],
)
def test_timestamps_convert_as_protobuf_converts_them(seconds: int, nanos: int) -> None:
    stamp = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    converted = rfc3339(stamp)
    assert converted == stamp.ToDatetime(tzinfo=UTC)
    assert converted is not None and converted.tzinfo is UTC


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
