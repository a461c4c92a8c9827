"""One order is one trace: from the client's `traceparent` through the gateway, the order
service's calls, the outbox, RabbitMQ, the payment and notification services and back, as the
real processes send it to a real OTLP receiver."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from tests.conftest import PostgresFactory
from tests.e2e.conftest import RunningMesh, running_mesh
from tests.e2e.shop import ADDRESS, Shop
from tests.otlp import ReceivedSpan, SpanStore, grpc_receiver
from tests.support import eventually

pytestmark = pytest.mark.e2e

# What one order's trace must hold, by process, kind and name.
EXPECTED = {
    ("gateway", "server", "POST /v1/orders"),
    ("order_service", "server", "ecommerce.order.v1.OrderService/CreateOrder"),
    ("order_service", "client", "ecommerce.product.v1.ProductService/ReserveStock"),
    ("product_service", "server", "ecommerce.product.v1.ProductService/ReserveStock"),
    ("order_service", "client", "ecommerce.user.v1.UserService/IsUserActive"),
    ("user_service", "server", "ecommerce.user.v1.UserService/IsUserActive"),
    ("order_service", "producer", "publish order.created"),
    ("payment_service", "consumer", "process order.created"),
    ("payment_service", "producer", "publish payment.succeeded"),
    ("order_service", "consumer", "process payment.succeeded"),
    ("order_service", "producer", "publish order.confirmed"),
    ("notification_service", "consumer", "process order.created"),
    ("notification_service", "consumer", "process order.confirmed"),
    ("notification_service", "producer", "publish notification.sent"),
    ("order_service", "consumer", "process notification.sent"),
}


@pytest.fixture(scope="module")
async def traced(
    postgres_databases: PostgresFactory, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[RunningMesh, SpanStore]]:
    with grpc_receiver() as (endpoint, store):
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            # Spans leave within a fifth of a second, not the SDK's default five.
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
        workdir = tmp_path_factory.mktemp("traced")
        async with running_mesh(postgres_databases, workdir, env) as mesh:
            yield mesh, store


def missing(spans: list[ReceivedSpan]) -> set[tuple[str, str, str]]:
    return EXPECTED - {(span.service, span.kind, span.name) for span in spans}


async def test_one_order_is_one_trace_from_the_client_to_the_last_email(
    traced: tuple[RunningMesh, SpanStore],
) -> None:
    mesh, store = traced
    shop = Shop(mesh)
    seller, buyer = await shop.seller(), await shop.customer()
    product = await shop.product(seller, stock=5)
    trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)
    placed = await mesh.client.post(
        "/v1/orders",
        json={
            "items": [{"product_id": product["id"], "quantity": 1}],
            "payment_method": "pm_card_visa",
            "shipping_address": ADDRESS,
        },
        headers={
            **buyer.headers,
            "Idempotency-Key": secrets.token_hex(8),
            "traceparent": f"00-{trace_id}-{client_span}-01",
        },
    )
    assert placed.status_code == 201, placed.text
    await shop.wait_status(buyer, placed.json()["id"], "PAID")

    async def complete() -> list[ReceivedSpan] | None:
        spans = store.spans(trace_id)
        return spans if not missing(spans) else None

    try:
        spans = await eventually(complete, timeout=30, message="the order's trace complete")
    except AssertionError:
        raise AssertionError(f"missing from the trace: {missing(store.spans(trace_id))}") from None
    ids = {span.span_id for span in spans}
    (gateway,) = [s for s in spans if s.service == "gateway" and s.kind == "server"]
    assert gateway.parent_id == client_span  # the client's trace, continued
    dangling = [s for s in spans if s.parent_id not in ids and s is not gateway]
    assert not dangling, dangling
