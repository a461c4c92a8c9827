"""Problem types: every reason a service gives has a documented, stable `type` URI, which the
gateway puts in each problem+json it answers."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import AsyncIterator, Iterator

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2

from gateway.problem_types import PROBLEM_TYPES, type_uri
from gateway.problems import GRPC_TO_HTTP
from meshkit.errors import DomainError, NotFound
from meshkit.rpc import ERROR_DOMAIN, status_for
from order_service.errors import OrderNotPending, OutOfStock
from tests.gateway.conftest import StubUpstream, abort_with, running_gateway
from tests.support import problem

PACKAGES = (
    "meshkit",
    "gateway",
    "user_service",
    "product_service",
    "order_service",
    "payment_service",
    "notification_service",
)


def every_domain_error() -> Iterator[type[DomainError]]:
    """Each subclass of DomainError our packages define, once every module of them is loaded."""
    for name in PACKAGES:
        package = importlib.import_module(name)
        for module in pkgutil.walk_packages(package.__path__, f"{name}."):
            if ".migrations" not in module.name and not module.name.endswith("__main__"):
                importlib.import_module(module.name)
    pending = [DomainError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.split(".")[0] in PACKAGES:
            yield cls


def test_every_reason_a_service_gives_is_documented_with_its_status() -> None:
    errors = list(every_domain_error())
    assert OutOfStock in errors
    undocumented = {
        f"{cls.__module__}.{cls.__name__}: {cls.reason} ({GRPC_TO_HTTP.get(cls.code, 500)})"
        for cls in errors
        if GRPC_TO_HTTP.get(cls.code, 500)
        not in getattr(PROBLEM_TYPES.get(cls.reason), "statuses", ())
        and cls is not DomainError
    }
    assert not undocumented, "add these to gateway/problem_types.py"


def test_a_domain_error_carries_its_reason_in_the_error_info() -> None:
    status = status_for(OutOfStock("Not enough stock."))
    infos = []
    for key, value in status.trailing_metadata:
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            for detail in status_pb2.Status.FromString(value).details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    infos.append(info)
    assert [(info.reason, info.domain) for info in infos] == [("OUT_OF_STOCK", ERROR_DOMAIN)]
    assert status.code is grpc.StatusCode.FAILED_PRECONDITION


def test_a_reason_undocumented_for_a_status_gets_the_status_type() -> None:
    assert type_uri(409, "OUT_OF_STOCK") == "/problems/out-of-stock"
    assert type_uri(409, "A_REASON_FROM_A_NEWER_SERVICE") == "/problems/failed-precondition"
    # A reason documented for another status does not lend its type.
    assert type_uri(500, "OUT_OF_STOCK") == "/problems/internal"
    assert type_uri(418) == "about:blank"


@pytest.fixture
async def client(stub: StubUpstream) -> AsyncIterator[httpx.AsyncClient]:
    async with running_gateway(stub) as (_, http):
        yield http


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (OutOfStock("Not enough stock of product 'p1'."), "/problems/out-of-stock"),
        (OrderNotPending("Only a PENDING order can be cancelled."), "/problems/order-not-pending"),
        (NotFound("No such thing."), "/problems/not-found"),
    ],
)
async def test_the_gateway_answers_each_upstream_reason_with_its_type(
    client: httpx.AsyncClient, stub: StubUpstream, error: DomainError, expected: str
) -> None:
    stub.fail = abort_with(status_for(error))
    response = await client.post("/v1/orders/o1:cancel", json={})
    body = problem(response, GRPC_TO_HTTP[error.code])
    assert body["type"] == expected
    # Additive: the title is still the status's phrase, the detail the service's message.
    assert body["detail"] == error.message


async def test_a_status_grpc_itself_wrote_gets_the_generic_type(
    client: httpx.AsyncClient, stub: StubUpstream
) -> None:
    async def fail(context: grpc.aio.ServicerContext) -> None:  # type: ignore[type-arg]
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "transport noise")

    stub.fail = fail
    body = problem(await client.post("/v1/orders/o1:cancel", json={}), 409)
    assert body["type"] == "/problems/failed-precondition"
    assert "noise" not in body["detail"]


async def test_each_type_uri_is_documented_where_it_points(client: httpx.AsyncClient) -> None:
    listed = (await client.get("/problems")).json()
    assert {entry["reason"] for entry in listed} == set(PROBLEM_TYPES)
    one = await client.get("/problems/out-of-stock")
    assert one.status_code == 200
    assert one.json() == {
        "type": "/problems/out-of-stock",
        "reason": "OUT_OF_STOCK",
        "statuses": [409],
        "summary": PROBLEM_TYPES["OUT_OF_STOCK"].summary,
    }
    missing = problem(await client.get("/problems/no-such-problem"), 404)
    assert missing["type"] == "/problems/not-found"


async def test_the_openapi_problem_schema_lists_every_type(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()["components"]["schemas"]["Problem"]
    description = schema["properties"]["type"]["description"]
    assert all(f"`{problem_type.uri}`" in description for problem_type in PROBLEM_TYPES.values())
