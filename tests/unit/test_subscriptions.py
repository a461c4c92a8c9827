"""A service's handlers, its queue's bindings and the known event types agree, or it won't start."""

from __future__ import annotations

import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast
from unittest.mock import create_autospec

import pytest

from meshkit.data import UnitOfWork
from meshkit.messaging import CONSUMERS, EVENT_TYPES, Messaging, SubscriptionMismatch, Subscriptions
from meshkit.settings import PROJECT_ROOT
from notification_service.app import subscriptions as notification_subscriptions
from notification_service.notifications import Notifications
from order_service.app import subscriptions as order_subscriptions
from order_service.saga import Saga
from payment_service.app import subscriptions as payment_subscriptions
from payment_service.payments import Payments

EVENTS_PROTO = PROJECT_ROOT / "proto" / "ecommerce" / "events" / "v1" / "events.proto"


async def handle(tx: object, body: object, envelope: object) -> None:
    """A handler that does nothing: these tests never deliver a message."""


def test_subscriptions_that_match_their_bindings_pass_the_check() -> None:
    subscriptions = (
        Subscriptions[UnitOfWork]("payment_service")
        .on("order.created", handle)
        .on("order.cancelled", handle)
    )
    subscriptions.check()
    subscriptions.check(["order.cancelled", "order.created"])
    assert subscriptions.event_types == ("order.created", "order.cancelled")
    assert subscriptions.handlers == {"order.created": handle, "order.cancelled": handle}


def test_a_binding_without_a_handler_fails_the_check_naming_event_and_service() -> None:
    subscriptions = Subscriptions[UnitOfWork]("payment_service").on("order.created", handle)
    with pytest.raises(SubscriptionMismatch) as raised:
        subscriptions.check(["order.created", "order.cancelled"])
    assert raised.value.problems == (
        "order.cancelled is bound to its queue (meshkit.messaging.amqp.CONSUMERS) but has no handler",
    )
    assert str(raised.value).startswith("payment_service cannot consume its events: ")


def test_a_handler_without_a_binding_fails_the_check_naming_event_and_service() -> None:
    subscriptions = (
        Subscriptions[UnitOfWork]("payment_service")
        .on("order.created", handle)
        .on("order.cancelled", handle)
        .on("order.shipped", handle)
    )
    with pytest.raises(SubscriptionMismatch) as raised:
        subscriptions.check()  # against the topology: payment_service takes no order.shipped
    assert raised.value.consumer == "payment_service"
    assert raised.value.problems == (
        "order.shipped has a handler but no binding to its queue (meshkit.messaging.amqp.CONSUMERS)",
    )


def test_every_disagreement_is_named_in_the_one_error() -> None:
    subscriptions = Subscriptions[UnitOfWork]("order_service").on("payment.failed", handle)
    with pytest.raises(SubscriptionMismatch) as raised:
        subscriptions.check(["payment.succeeded", "payment.reversed"])
    assert raised.value.problems == (
        "payment.reversed is bound to its queue (meshkit.messaging.amqp.CONSUMERS) but is not an event "
        "type (meshkit.messaging.events.EVENT_TYPES)",
        "payment.succeeded is bound to its queue (meshkit.messaging.amqp.CONSUMERS) but has no handler",
        "payment.failed has a handler but no binding to its queue (meshkit.messaging.amqp.CONSUMERS)",
    )


def test_a_consumer_missing_from_the_topology_fails_the_check() -> None:
    subscriptions = Subscriptions[UnitOfWork]("product_service").on("order.created", handle)
    with pytest.raises(SubscriptionMismatch) as raised:
        subscriptions.check()
    assert str(raised.value) == (
        "product_service cannot consume its events: "
        "it has no queue in the topology (meshkit.messaging.amqp.CONSUMERS)"
    )


def test_an_unknown_event_type_is_refused_where_it_is_declared() -> None:
    with pytest.raises(SubscriptionMismatch) as raised:
        Subscriptions[UnitOfWork]("order_service").on("payment.reversed", handle)
    assert str(raised.value) == (
        "order_service cannot consume its events: payment.reversed is not an event type "
        "(meshkit.messaging.events.EVENT_TYPES)"
    )


def test_a_second_handler_for_one_event_type_is_refused() -> None:
    subscriptions = Subscriptions[UnitOfWork]("order_service").on("payment.failed", handle)
    with pytest.raises(SubscriptionMismatch) as raised:
        subscriptions.on("payment.failed", handle)
    assert raised.value.problems == ("payment.failed has two handlers",)


def test_a_service_starts_no_jobs_when_its_subscriptions_disagree() -> None:
    # The check runs before anything is built from the messaging's parts: none are given.
    messaging = cast(
        Messaging, SimpleNamespace(settings=SimpleNamespace(service_name="order_service"))
    )
    partial = Subscriptions[UnitOfWork]("order_service").on("payment.failed", handle)
    with pytest.raises(SubscriptionMismatch) as raised:
        Messaging.jobs(messaging, partial)
    assert (
        "payment.succeeded is bound to its queue (meshkit.messaging.amqp.CONSUMERS) but has no handler"
        in raised.value.problems
    )
    with pytest.raises(SubscriptionMismatch) as raised:
        Messaging.jobs(messaging, Subscriptions[UnitOfWork]("payment_service"))
    assert str(raised.value) == (
        "order_service cannot consume its events: it was given the subscriptions of payment_service"
    )


# Each service's own declaration, built as its composition root builds it.
SERVICES: dict[str, Callable[[], Subscriptions[Any]]] = {
    "order_service": lambda: order_subscriptions(
        create_autospec(Saga, instance=True, unit_of_work=None)
    ),
    "payment_service": lambda: payment_subscriptions(
        create_autospec(Payments, instance=True, unit_of_work=None)
    ),
    "notification_service": lambda: notification_subscriptions(
        create_autospec(Notifications, instance=True, unit_of_work=None)
    ),
}


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_subscribes_to_exactly_its_bindings(service: str) -> None:
    subscriptions = SERVICES[service]()
    assert subscriptions.consumer == service
    subscriptions.check()


def test_every_queue_of_the_topology_has_a_service_consuming_it() -> None:
    assert set(CONSUMERS) == set(SERVICES)


def test_the_event_types_are_the_routing_keys_the_proto_gives_its_messages() -> None:
    # Each event message's comment gives its routing key, as `// Routing key "order.created"`.
    proto = EVENTS_PROTO.read_text()
    keyed = dict(re.findall(r'// Routing key "([\w.]+)"(?:.*\n)*?message (\w+) \{', proto))
    assert keyed == {key: body.DESCRIPTOR.name for key, body in EVENT_TYPES.items()}
    for key, body in EVENT_TYPES.items():
        assert body.DESCRIPTOR.full_name == f"ecommerce.events.v1.{keyed[key]}"
