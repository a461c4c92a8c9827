"""The gateway's routes in process over a stub upstream: what reaches a service, and what a
client is told when its input, or an upstream's answer, is out of the ordinary."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import grpc
import httpx
import pytest
from fastapi.routing import APIRoute

from ecommerce.order.v1 import analytics_pb2
from gateway.app import create_app
from gateway.routes import carts, categories, orders, products, users
from gateway.routes.params import ID_MAX_LENGTH
from gateway.settings import GatewaySettings
from meshkit.errors import ResourceExhausted
from meshkit.rpc import status_for
from meshkit.settings import load_settings
from tests.gateway.conftest import StubUpstream, abort, abort_with, running_gateway
from tests.support import problem


@pytest.fixture
async def client(stub: StubUpstream) -> AsyncIterator[httpx.AsyncClient]:
    async with running_gateway(stub) as (_, http):
        yield http


def fields(body: dict[str, Any]) -> list[str]:
    return [error["field"] for error in body.get("errors", [])]


ADDRESS = {
    "recipient": "Ada",
    "line1": "12 St James's Square",
    "city": "London",
    "country_code": "GB",
}
ORDER = {"payment_method": "pm_card_visa", "shipping_address": ADDRESS}
ORDER_HEADERS = {"Idempotency-Key": "order-1"}


def order_of(quantity: int) -> dict[str, Any]:
    return {**ORDER, "items": [{"product_id": "p1", "quantity": quantity}]}


# Quantities


@pytest.mark.parametrize("quantity", [2**63, 99999999999999999999999, -(2**63) - 1])
async def test_an_order_quantity_no_int64_holds_is_422_and_reaches_no_service(
    client: httpx.AsyncClient, stub: StubUpstream, quantity: int
) -> None:
    response = await client.post("/v1/orders", json=order_of(quantity), headers=ORDER_HEADERS)
    assert fields(problem(response, 422)) == ["items.0.quantity"]
    assert stub.calls == []


@pytest.mark.parametrize("quantity", [2**63, 99999999999999999999])
async def test_a_cart_quantity_no_int64_holds_is_422_and_reaches_no_service(
    client: httpx.AsyncClient, stub: StubUpstream, quantity: int
) -> None:
    response = await client.put("/v1/cart/items/p1", json={"quantity": quantity})
    assert fields(problem(response, 422)) == ["quantity"]
    assert stub.calls == []


@pytest.mark.parametrize("quantity", ["1", True, 1.5, None])
async def test_a_quantity_that_is_not_a_json_integer_is_422(
    client: httpx.AsyncClient, stub: StubUpstream, quantity: object
) -> None:
    # The contract's numbers are JSON numbers: a string or a boolean is not read as one.
    placed = await client.post("/v1/orders", json=order_of(quantity), headers=ORDER_HEADERS)  # type: ignore[arg-type]
    put = await client.put("/v1/cart/items/p1", json={"quantity": quantity})
    assert fields(problem(placed, 422)) == ["items.0.quantity"]
    assert fields(problem(put, 422)) == ["quantity"]
    assert stub.calls == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "N", "price": {"amount_minor": 100, "currency_code": "USD"}, "stock": False},
         "stock"),
        ({"name": "N", "price": {"amount_minor": "100", "currency_code": "USD"}},
         "price.amount_minor"),
    ],
)  # fmt: skip
async def test_a_product_number_that_is_a_string_or_boolean_is_422(
    client: httpx.AsyncClient, stub: StubUpstream, body: dict[str, Any], field: str
) -> None:
    created = await client.post("/v1/products", json=body, headers={"Authorization": "Bearer x"})
    assert fields(problem(created, 422)) == [field]
    changed = await client.patch(
        "/v1/products/p1", json={"stock": "5"}, headers={"Authorization": "Bearer x"}
    )
    assert fields(problem(changed, 422)) == ["stock"]
    assert stub.calls == []


async def test_an_accounts_active_flag_must_be_a_json_boolean(
    client: httpx.AsyncClient, stub: StubUpstream
) -> None:
    changed = await client.patch(
        "/v1/users/u1", json={"active": "false"}, headers={"Authorization": "Bearer x"}
    )
    assert fields(problem(changed, 422)) == ["active"]
    assert stub.calls == []


async def test_a_whole_number_written_with_a_fraction_is_an_integer(
    client: httpx.AsyncClient, stub: StubUpstream
) -> None:
    # JSON has one kind of number: 2.0 is 2, as a client's doubles send it.
    placed = await client.post("/v1/orders", json=order_of(2.0), headers=ORDER_HEADERS)  # type: ignore[arg-type]
    assert placed.status_code == 201, placed.text


@pytest.mark.parametrize("quantity", [0, 1001, 2**63 - 1, -(2**63)])
async def test_a_quantity_within_int64_is_left_to_the_order_service(
    client: httpx.AsyncClient, stub: StubUpstream, quantity: int
) -> None:
    # The service judges 1 to 1000 and answers 400 naming the item, in one place.
    placed = await client.post("/v1/orders", json=order_of(quantity), headers=ORDER_HEADERS)
    put = await client.put("/v1/cart/items/p1", json={"quantity": quantity})
    assert (placed.status_code, put.status_code) == (201, 200)
    assert stub.methods == [
        "/ecommerce.order.v1.OrderService/CreateOrder",
        "/ecommerce.order.v1.CartService/SetCartItem",
    ]


# Ids in paths


def routes_with_path_ids() -> list[tuple[str, str]]:
    """(method, path template) of every route that takes an id in its path."""
    found = []
    for module in (products, orders, carts, categories, users):
        for route in module.router.routes:
            assert isinstance(route, APIRoute)
            if route.param_convertors and route.methods:
                found += [(method, route.path) for method in sorted(route.methods)]
    return found


def with_id(template: str, value: str) -> str:
    assert template.count("{") == 1, template
    start, end = template.index("{"), template.index("}")
    return template[:start] + value + template[end + 1 :]


@pytest.mark.parametrize(("method", "template"), routes_with_path_ids())
async def test_a_path_id_longer_than_any_the_mesh_issues_is_404_and_reaches_no_service(
    client: httpx.AsyncClient, stub: StubUpstream, method: str, template: str
) -> None:
    # 5,000 characters once made the upstream's error outgrow gRPC's metadata limit.
    for length in (ID_MAX_LENGTH + 1, 5000):
        response = await client.request(method, with_id(template, "z" * length))
        assert problem(response, 404)["detail"] == "No resource has this id."
    assert stub.calls == []


async def test_a_path_id_as_long_as_the_bound_reaches_the_service(
    client: httpx.AsyncClient, stub: StubUpstream
) -> None:
    response = await client.get(f"/v1/orders/{'z' * ID_MAX_LENGTH}/payment")
    assert response.status_code == 200, response.text
    assert stub.methods == ["/ecommerce.payment.v1.PaymentService/GetPayment"]


def test_the_openapi_document_shows_the_bound_of_every_path_id() -> None:
    document = create_app(load_settings(GatewaySettings, env_file=None)).openapi()
    for method, template in routes_with_path_ids():
        parameters = document["paths"][template][method.lower()]["parameters"]
        in_path = [p for p in parameters if p["in"] == "path"]
        assert [p["schema"]["maxLength"] for p in in_path] == [ID_MAX_LENGTH], template


# Statuses of upstreams


# What gRPC itself answered for the error of a 5,000-character id.
METADATA_LIMIT = (
    "Stream removed (received metadata size exceeds soft limit (10371 vs. 8192), "
    "grpc-status-details-bin: 10010B...)"
)


async def test_resource_exhausted_from_grpc_itself_is_a_500_without_its_text(
    client: httpx.AsyncClient, stub: StubUpstream
) -> None:
    stub.fail = abort(grpc.StatusCode.RESOURCE_EXHAUSTED, METADATA_LIMIT)
    response = await client.get("/v1/orders/o1/payment")
    body = problem(response, 500)
    assert "request id" in body["detail"]
    assert "retry-after" not in response.headers
    assert "grpc" not in response.text.lower() and "metadata" not in response.text


async def test_resource_exhausted_a_service_wrote_is_429_with_its_message(
    client: httpx.AsyncClient, stub: StubUpstream
) -> None:
    stub.fail = abort_with(status_for(ResourceExhausted("Too many payments looked up.")))
    response = await client.get("/v1/orders/o1/payment")
    assert problem(response, 429)["detail"] == "Too many payments looked up."


async def test_a_client_error_no_service_wrote_keeps_its_status_not_its_text(
    client: httpx.AsyncClient, stub: StubUpstream
) -> None:
    stub.fail = abort(grpc.StatusCode.INVALID_ARGUMENT, "grpc: header list size exceeded")
    response = await client.get("/v1/orders/o1")
    assert problem(response, 400)["detail"] == "Bad Request"
    assert "grpc" not in response.text


# Times


@pytest.mark.parametrize("route", ["top-products", "sales"])
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("start", "0001-01-01T00:00:00+05:00"),  # year 0 in UTC
        ("end", "9999-12-31T23:00:00-05:00"),  # year 10000 in UTC
    ],
)
async def test_a_time_utc_cannot_hold_is_400_naming_the_parameter(
    client: httpx.AsyncClient, stub: StubUpstream, route: str, name: str, value: str
) -> None:
    response = await client.get(f"/v1/analytics/{route}", params={name: value})
    body = problem(response, 400)
    assert body["errors"] == [
        {"field": name, "message": "must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z"}
    ]
    assert stub.calls == []


@pytest.mark.parametrize("value", ["0.5", "1700000000", "yesterday"])
async def test_a_time_not_written_as_rfc_3339_is_400_naming_the_parameter(
    client: httpx.AsyncClient, stub: StubUpstream, value: str
) -> None:
    response = await client.get("/v1/analytics/sales", params={"start": value})
    body = problem(response, 400)
    assert body["errors"] == [
        {"field": "start", "message": "must be an RFC 3339 date-time, such as 2026-01-31T00:00:00Z"}
    ]
    assert stub.calls == []


async def test_times_reach_the_service_in_utc_to_the_ends_of_the_range(
    client: httpx.AsyncClient, stub: StubUpstream
) -> None:
    params = {"start": "0001-01-01T05:00:00+05:00", "end": "9999-12-31T18:59:59-05:00"}
    assert (await client.get("/v1/analytics/top-products", params=params)).status_code == 200
    [(_, request)] = stub.calls
    sent = analytics_pb2.GetTopProductsRequest.FromString(request)
    assert sent.start_time.ToDatetime(UTC) == datetime(1, 1, 1, tzinfo=UTC)
    assert sent.end_time.ToDatetime(UTC) == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


# Bodies

PRODUCT = b'{"name": "Kite", "price": {"amount_minor": 2599, "currency_code": "USD"}}'


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        pytest.param("text/plain", b"hello", id="text-not-json"),
        pytest.param("text/plain", PRODUCT, id="text-json"),
        pytest.param("application/x-www-form-urlencoded", PRODUCT, id="form-json"),
        pytest.param(None, b"hello", id="untyped-not-json"),
        pytest.param(None, PRODUCT, id="untyped-json"),
    ],
)
async def test_a_body_not_sent_as_json_is_400_whatever_it_holds(
    client: httpx.AsyncClient, stub: StubUpstream, content_type: str | None, content: bytes
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post("/v1/products", content=content, headers=headers)
    assert response.request.headers.get("content-type") == content_type
    body = problem(response, 400)
    assert body["detail"] == (
        "The request body must be JSON, sent with Content-Type: application/json."
    )
    assert "errors" not in body
    assert stub.calls == []


async def test_a_json_body_is_400_when_it_does_not_parse_and_422_when_it_does_not_fit(
    client: httpx.AsyncClient, stub: StubUpstream
) -> None:
    json_type = {"Content-Type": "application/json"}
    broken = await client.post("/v1/products", content=b"hello", headers=json_type)
    assert problem(broken, 400)["detail"] == "The request body is not valid JSON."
    unfit = await client.post("/v1/products", content=b'"hello"', headers=json_type)
    assert fields(problem(unfit, 422)) == ["body"]
    assert stub.calls == []
    created = await client.post("/v1/products", content=PRODUCT, headers=json_type)
    assert created.status_code == 201, created.text
    assert stub.methods == ["/ecommerce.product.v1.ProductService/CreateProduct"]
