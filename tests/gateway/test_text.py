"""Text a client sends that no service could take: a lone surrogate (not Unicode at all) or
NUL (which PostgreSQL text cannot hold) is a client error naming where it was, never a 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, MutableMapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ecommerce.product.v1 import product_pb2
from gateway.problems import PROBLEM_JSON
from tests.gateway.conftest import StubUpstream, running_gateway

JSON = {"Content-Type": "application/json"}
PRICE = '"price": {"amount_minor": 2599, "currency_code": "USD"}'


@dataclass
class Gateway:
    app: FastAPI
    http: httpx.AsyncClient
    stub: StubUpstream


@pytest.fixture
async def gateway(stub: StubUpstream) -> AsyncIterator[Gateway]:
    async with running_gateway(stub) as (app, http):
        yield Gateway(app, http, stub)


def problem(status: int, body: bytes, content_type: str) -> dict[str, Any]:
    assert content_type == PROBLEM_JSON
    document: dict[str, Any] = json.loads(body)
    assert document["status"] == status, document
    return document


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param(f'{{"name": "\\ud800", {PRICE}}}', "name", id="surrogate"),
        pytest.param(f'{{"name": "Kite\\udfff kite", {PRICE}}}', "name", id="low-surrogate"),
        pytest.param(
            f'{{"name": "Kite", "description": "a\\u0000b", {PRICE}}}', "description", id="nul"
        ),
    ],
)
async def test_text_no_service_could_store_in_a_body_is_422_naming_the_field(
    gateway: Gateway, body: str, field: str
) -> None:
    response = await gateway.http.post("/v1/products", content=body.encode(), headers=JSON)
    assert response.status_code == 422, response.text
    document = problem(422, response.content, response.headers["content-type"])
    assert [error["field"] for error in document["errors"]] == [field]
    assert gateway.stub.calls == []


async def test_text_in_a_nested_body_field_is_422_naming_its_path(gateway: Gateway) -> None:
    order = {
        "payment_method": "pm_card_visa",
        "shipping_address": {
            "recipient": "Ada\u0000",
            "line1": "1 Main St",
            "city": "London",
            "country_code": "GB",
        },
        "items": [{"product_id": "p1", "quantity": 1}],
    }
    response = await gateway.http.post(
        "/v1/orders", json=order, headers={"Idempotency-Key": "order-1"}
    )
    document = problem(422, response.content, response.headers["content-type"])
    assert [error["field"] for error in document["errors"]] == ["shipping_address.recipient"]
    assert gateway.stub.calls == []


async def test_valid_text_beyond_ascii_still_reaches_the_service(gateway: Gateway) -> None:
    body = f'{{"name": "Drachen 🪁 ünïcödé", {PRICE}}}'
    response = await gateway.http.post("/v1/products", content=body.encode(), headers=JSON)
    assert response.status_code == 201, response.text
    assert gateway.stub.methods == ["/ecommerce.product.v1.ProductService/CreateProduct"]


async def asgi_get(app: FastAPI, path: str, query: bytes = b"") -> tuple[int, bytes, str]:
    """A GET sent to the app as an ASGI server would, with a path no HTTP client can encode."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogatepass"),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"gateway"), (b"authorization", b"Bearer any")],
        "client": ("127.0.0.1", 1234),
        "server": ("gateway", 80),
    }
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body, headers["content-type"]


# Servers decode paths and queries with replacement characters, so no surrogate comes that
# way over HTTP; these tests hand the app one anyway, as an ASGI server could.


async def test_a_lone_surrogate_in_a_path_id_is_404_like_any_id_no_service_issued(
    gateway: Gateway,
) -> None:
    status, body, content_type = await asgi_get(gateway.app, "/v1/products/\ud800")
    assert status == 404
    assert problem(404, body, content_type)["detail"] == "No resource has this id."
    assert gateway.stub.calls == []


async def test_text_not_unicode_that_reaches_a_protobuf_message_is_400_not_500(
    gateway: Gateway,
) -> None:
    async def unchecked(name: str) -> None:
        # What a route does with text no schema checked: a protobuf message cannot hold it.
        product_pb2.Product(name=name)

    gateway.app.add_api_route("/unchecked/{name}", unchecked)
    status, body, content_type = await asgi_get(gateway.app, "/unchecked/\ud800")
    assert status == 400
    document = problem(400, body, content_type)
    assert document["detail"] == "The request holds text that is not valid Unicode."


async def test_a_lone_surrogate_in_an_unknown_path_is_404_not_500(gateway: Gateway) -> None:
    status, body, content_type = await asgi_get(gateway.app, "/v1/nothing/\ud800")
    assert status == 404
    assert problem(404, body, content_type)["detail"] == "No route matches GET /v1/nothing/\\ud800."


@pytest.mark.parametrize("query", [b"query=%ED%A0%80", b"query=%ED%A0", b"query=\xed\xa0\x80"])
async def test_bytes_of_a_surrogate_in_a_query_do_not_fail_the_request(
    gateway: Gateway, query: bytes
) -> None:
    # Query strings are decoded with replacement characters: valid Unicode, passed on.
    status, body, _ = await asgi_get(gateway.app, "/v1/products", query)
    assert status == 200, body
