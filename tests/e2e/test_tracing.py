"""One order is one trace: from the client's `traceparent` through the gateway, the order
service's calls, the outbox, RabbitMQ, the payment and notification services and back, as the
real processes send it to a real OTLP receiver."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import PostgresFactory
from tests.e2e.conftest import RunningMesh, running_mesh
from tests.e2e.shop import ADDRESS, Person, Shop
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
    ("notification_service", "internal", "send order.created email"),
    ("notification_service", "internal", "send order.confirmed email"),
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
            # Half the traces that begin here; a client's traceparent decides for its own.
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.5",
        }
        workdir = tmp_path_factory.mktemp("traced")
        async with running_mesh(postgres_databases, workdir, env) as mesh:
            yield mesh, store


async def place(
    mesh: RunningMesh, buyer: Person, product: dict[str, Any], traceparent: str | None = None
) -> str:
    """One unit of `product` ordered by `buyer`, with the client's `traceparent` if given;
    the order's id."""
    headers = {**buyer.headers, "Idempotency-Key": secrets.token_hex(8)}
    if traceparent is not None:
        headers["traceparent"] = traceparent
    placed = await mesh.client.post(
        "/v1/orders",
        json={
            "items": [{"product_id": product["id"], "quantity": 1}],
            "payment_method": "pm_card_visa",
            "shipping_address": ADDRESS,
        },
        headers=headers,
    )
    assert placed.status_code == 201, placed.text
    order_id: str = placed.json()["id"]
    return order_id


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
    order_id = await place(mesh, buyer, product, f"00-{trace_id}-{client_span}-01")
    await shop.wait_status(buyer, order_id, "PAID")

    def dangling(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
        ids = {span.span_id for span in spans}
        return [
            s
            for s in spans
            if s.parent_id not in ids
            and not (s.parent_id == client_span and (s.service, s.kind) == ("gateway", "server"))
        ]

    async def complete() -> list[ReceivedSpan] | None:
        # Each process sends its spans on its own schedule: a child may come before its
        # parent, so the trace is complete once nothing is missing and no parent is awaited.
        spans = store.spans(trace_id)
        return spans if not missing(spans) and not dangling(spans) else None

    try:
        spans = await eventually(complete, timeout=30, message="the order's trace complete")
    except AssertionError:
        spans = store.spans(trace_id)
        raise AssertionError(
            f"missing from the trace: {missing(spans)}; no parent: {dangling(spans)}"
        ) from None
    (gateway,) = [s for s in spans if s.service == "gateway" and s.kind == "server"]
    assert gateway.parent_id == client_span  # the client's trace, continued


async def test_an_unsampled_order_makes_no_span_in_any_process(
    traced: tuple[RunningMesh, SpanStore],
) -> None:
    """A client's unsampled `traceparent` is followed everywhere: no process makes a span of
    it, nor starts a trace of its own for the work it leads to."""
    mesh, store = traced
    shop = Shop(mesh)
    seller, buyer = await shop.seller(), await shop.customer()
    product = await shop.product(seller, stock=5)

    def count(service: str, name: str) -> int:
        return sum(1 for s in store.spans() if (s.service, s.name) == (service, name))

    watched = [
        ("order_service", "ecommerce.order.v1.OrderService/CreateOrder"),
        ("payment_service", "process order.created"),
        ("notification_service", "process order.confirmed"),
    ]
    before = {pair: count(*pair) for pair in watched}

    async def order(traceparent: str) -> str:
        order_id = await place(mesh, buyer, product, traceparent)
        await shop.wait_status(buyer, order_id, "PAID")
        return order_id

    unsampled = secrets.token_hex(16)
    await order(f"00-{unsampled}-{secrets.token_hex(8)}-00")
    # A sampled order after it: once its trace is complete, every process has sent what it
    # made for the first order too (each exports its spans in the order they ended).
    sampled = secrets.token_hex(16)
    await order(f"00-{sampled}-{secrets.token_hex(8)}-01")

    async def complete() -> list[ReceivedSpan] | None:
        spans = store.spans(sampled)
        return spans if not missing(spans) else None

    await eventually(complete, timeout=30, message="the sampled order's trace complete")
    assert store.spans(unsampled) == []
    # Only the sampled order's spans were added: nothing began a trace of its own.
    assert {pair: count(*pair) - before[pair] for pair in watched} == dict.fromkeys(watched, 1)


async def test_an_order_without_a_traceparent_is_traced_whole_or_not_at_all(
    traced: tuple[RunningMesh, SpanStore],
) -> None:
    """Sampled at the gateway, where its trace begins, and nowhere else: every trace of these
    orders has the gateway's span at its root, and none is a fragment another process began."""
    mesh, store = traced
    shop = Shop(mesh)
    seller, buyer = await shop.seller(), await shop.customer()
    product = await shop.product(seller, stock=50)
    seen = {span.trace_id for span in store.spans()}
    # All 12 sampled, or none, once in 2,048 runs.
    placed = [await place(mesh, buyer, product) for _ in range(12)]
    for order_id in placed:
        await shop.wait_status(buyer, order_id, "PAID")

    def traces() -> dict[str, list[ReceivedSpan]]:
        grouped: dict[str, list[ReceivedSpan]] = {}
        for span in store.spans():
            if span.trace_id not in seen:
                grouped.setdefault(span.trace_id, []).append(span)
        return grouped

    def is_order(spans: list[ReceivedSpan]) -> bool:
        return any(span.name == "POST /v1/orders" for span in spans)

    async def settled() -> dict[str, list[ReceivedSpan]] | None:
        grouped = traces()
        orders = [spans for spans in grouped.values() if is_order(spans)]
        whole = orders and not any(missing(spans) for spans in orders)
        # A process sends a child's span before its parent's: wait for every trace's root.
        rooted = all(any(not s.parent_id for s in spans) for spans in grouped.values())
        return grouped if whole and rooted else None

    grouped = await eventually(settled, timeout=30, message="every sampled order's trace whole")
    orders = sum(1 for spans in grouped.values() if is_order(spans))
    assert 0 < orders < len(placed), f"{orders} of {len(placed)} sampled, not about half"
    # Everything here came in through the gateway: a trace rooted elsewhere is a fragment.
    for spans in grouped.values():
        roots = [(s.service, s.kind) for s in spans if not s.parent_id]
        assert roots == [("gateway", "server")], spans
