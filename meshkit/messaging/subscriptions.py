"""The events a service consumes, each declared once with its handler, and checked at start-up."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic

from meshkit.messaging.amqp import CONSUMERS
from meshkit.messaging.events import EVENT_TYPES
from meshkit.messaging.inbox import Handler, UnitOfWorkT

__all__ = ["SubscriptionMismatch", "Subscriptions"]

_TOPOLOGY = "meshkit.messaging.amqp.CONSUMERS"
_KNOWN = "meshkit.messaging.events.EVENT_TYPES"


class SubscriptionMismatch(SystemExit):
    """A service's handlers, its queue's bindings and the known event types disagree.

    Uncaught, it ends the process at start-up with what to fix: a binding without a handler
    would send each of its events to the dead-letter queue, and a handler without a binding
    would never run.
    """

    def __init__(self, consumer: str, problems: Iterable[str]) -> None:
        self.consumer = consumer
        self.problems = tuple(problems)
        super().__init__(f"{consumer} cannot consume its events: " + "; ".join(self.problems))


class Subscriptions(Generic[UnitOfWorkT]):
    """The events one service consumes, each with its handler, declared together once, and the
    unit of work each handler runs in.

    The consumer's dispatch map is `handlers` and its queue is bound to `event_types`, both
    read from here. The mesh's topology (`meshkit.messaging.amqp.CONSUMERS`) stays a table of its own:
    every service declares every queue with it at start-up, so that an event published before
    its consumer ever ran waits in that consumer's queue, and the deployment scales each
    consumer on its queue. `check` holds the two to the same event types.
    """

    def __init__(
        self, consumer: str, unit_of_work: Callable[[], UnitOfWorkT] | None = None
    ) -> None:
        self.consumer = consumer
        # None: a bare `UnitOfWork` of the service's database, with no repositories.
        self.unit_of_work = unit_of_work
        self._handlers: dict[str, Handler[UnitOfWorkT]] = {}

    def on(self, event_type: str, handler: Handler[UnitOfWorkT]) -> Subscriptions[UnitOfWorkT]:
        """Consume `event_type` with `handler`; returns itself, so declarations chain."""
        if event_type not in EVENT_TYPES:
            raise SubscriptionMismatch(
                self.consumer, [f"{event_type} is not an event type ({_KNOWN})"]
            )
        if event_type in self._handlers:
            raise SubscriptionMismatch(self.consumer, [f"{event_type} has two handlers"])
        self._handlers[event_type] = handler
        return self

    @property
    def event_types(self) -> tuple[str, ...]:
        """The routing keys the consumer's queue is bound to, in the order declared."""
        return tuple(self._handlers)

    @property
    def handlers(self) -> dict[str, Handler[UnitOfWorkT]]:
        """The consumer's dispatch map, event type to handler (a copy)."""
        return dict(self._handlers)

    def check(self, bindings: Iterable[str] | None = None) -> None:
        """Raise SubscriptionMismatch unless every binding of the consumer's queue is a known
        event type with a handler, and every handler has a binding.

        `bindings` defaults to the consumer's in the mesh's topology; every problem found is
        named in the one error, each with its event type.
        """
        if bindings is None:
            if self.consumer not in CONSUMERS:
                raise SubscriptionMismatch(
                    self.consumer, [f"it has no queue in the topology ({_TOPOLOGY})"]
                )
            bindings = CONSUMERS[self.consumer]
        bound = tuple(bindings)
        problems = [
            f"{key} is bound to its queue ({_TOPOLOGY}) but is not an event type ({_KNOWN})"
            for key in bound
            if key not in EVENT_TYPES
        ]
        problems += [
            f"{key} is bound to its queue ({_TOPOLOGY}) but has no handler"
            for key in bound
            if key in EVENT_TYPES and key not in self._handlers
        ]
        problems += [
            f"{key} has a handler but no binding to its queue ({_TOPOLOGY})"
            for key in self._handlers
            if key not in bound
        ]
        if problems:
            raise SubscriptionMismatch(self.consumer, problems)
