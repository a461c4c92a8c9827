"""Orders the saga left PENDING, finished by asking the payment service how the charge went.

The saga moves an order on when the payment service's event arrives. Should that never
happen (the event dead-lettered, a consumer's outage longer than its window, an operator's
purge), the order would stay PENDING with its stock held. Every `interval`, the oldest orders
PENDING for longer than `after` are looked at, one at a time:
- the payment succeeded: the order is confirmed, as `payment.succeeded` would have;
- it failed (or was given back): the order is cancelled and its stock released;
- there is none yet: the order waits, up to `deadline` after its creation; past that, it is
  cancelled ("payment not taken in time"). The `order.cancelled` it publishes stops the
  payment service from ever charging it, should the `order.created` still arrive.

Each step is a conditional move out of PENDING in a unit of work of its own, as the event
handlers' are: a replica, or an event arriving at the same moment, that moved the order first
leaves nothing to do here. The payment service unreachable is a step skipped until the next
round.

Stock is reserved before its order is saved, and a replica killed in between leaves stock
reserved for an order that does not exist. Each round also asks the product service which
orders still hold stock reserved in the window of time since the last round (the first one
looks back `LOOKBACK`), up to `after` ago, and releases the stock of those never saved. A
window is done only once every such release went through; otherwise the next round looks at
it again. Releasing is idempotent, so replicas doing the same do no harm.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from ecommerce.payment.v1 import payment_pb2
from meshkit.data import Database, utcnow
from meshkit.errors import DeadlineExceeded, Unavailable
from meshkit.failures import dependency_down
from order_service.reads import pending_since_before, saved_among
from order_service.saga import Saga
from order_service.unit_of_work import OrderUnitOfWork
from order_service.upstream import Catalog, Payments

logger = logging.getLogger(__name__)

# Orders looked at in one round, oldest first; the rest wait for the next.
BATCH = 100
# How far back a starting replica looks for stock reserved for an order never saved.
LOOKBACK = timedelta(hours=1)
_SETTLED = frozenset(
    {
        payment_pb2.PAYMENT_STATUS_SUCCEEDED,
        payment_pb2.PAYMENT_STATUS_FAILED,
        payment_pb2.PAYMENT_STATUS_REFUNDED,
    }
)


class Reconciler:
    def __init__(
        self,
        database: Database,
        unit_of_work: Callable[[], OrderUnitOfWork],
        saga: Saga,
        payments: Payments,
        catalog: Catalog,
        *,
        after: timedelta,
        deadline: timedelta,
        interval_seconds: float,
    ) -> None:
        self.db = database
        self.unit_of_work = unit_of_work
        self.saga = saga
        self.payments = payments
        self.catalog = catalog
        self.after = after
        self.deadline = deadline
        self.interval = interval_seconds
        # Where the next look for reservations without an order starts.
        self._reserved_since: datetime | None = None

    async def run(self) -> None:
        """Reconcile every `interval` seconds, for as long as the service runs."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.reconcile()
            except Exception as error:
                if not dependency_down(error):
                    raise  # a bug: the job is restarted, and the error logged with its trace
                logger.warning("reconciliation postponed: %s", f"{type(error).__name__}: {error}")

    async def reconcile(self) -> dict[str, int]:
        """One round: each order's outcome ("confirmed", "cancelled", "waiting", "skipped",
        "failed", "moved on"), counted, then the stock of orders never saved released."""
        now = utcnow()
        outcomes: dict[str, int] = {}
        for order_id, created_at in await pending_since_before(self.db, now - self.after, BATCH):
            outcome = await self._reconcile(order_id, created_at, now)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if outcomes:
            logger.info("reconciled orders left pending", extra={"outcomes": outcomes})
        if skipped := outcomes.get("skipped"):
            logger.warning(
                "%d order(s) left pending could not be reconciled yet: the payment or product "
                "service is out of reach; trying again in %gs",
                skipped,
                self.interval,
            )
        released = await self.release_unsaved(now)
        if released:
            outcomes["stock released"] = released
        return outcomes

    async def release_unsaved(self, now: datetime) -> int:
        """Release the stock reserved since the last look, up to `after` ago, for orders
        never saved; how many orders' stock was released."""
        start = self._reserved_since or now - LOOKBACK
        end = now - self.after
        if end <= start:
            return 0
        held = await self.catalog.held_reservations(start, end)
        unsaved = sorted(set(held) - await saved_among(self.db, held)) if held else []
        for order_id in unsaved:
            await self.catalog.release(order_id)
            logger.warning(
                "stock reserved for order %s, never saved, released by reconciliation",
                order_id,
                extra={"order_id": order_id},
            )
        self._reserved_since = end
        return len(unsaved)

    async def _reconcile(self, order_id: str, created_at: datetime, now: datetime) -> str:
        try:
            return await self._finish(order_id, created_at, now)
        except (Unavailable, DeadlineExceeded) as error:
            why = str(error)
        except Exception as error:
            if not dependency_down(error):
                # Not this round's to settle, nor a reason to hold up the orders behind it.
                logger.exception(
                    "reconciling order %s failed", order_id, extra={"order_id": order_id}
                )
                return "failed"
            why = f"{type(error).__name__}: {error}"
        # Said once for the round (`reconcile`), not once an order: an outage holds them all.
        logger.debug(
            "cannot reconcile order %s yet: %s", order_id, why, extra={"order_id": order_id}
        )
        return "skipped"

    async def _finish(self, order_id: str, created_at: datetime, now: datetime) -> str:
        payment = await self.payments.of_order(order_id)
        if payment is None:
            if now - created_at < self.deadline:
                return "waiting"
        elif payment.status not in _SETTLED:
            return "waiting"  # a status this service does not know yet settles nothing
        async with self.unit_of_work() as uow:
            if payment is None:
                outcome = "cancelled"
                moved = await self.saga.cancel_unpaid(
                    uow,
                    order_id,
                    "payment not taken in time",
                    "Order cancelled: no payment was taken in time",
                )
            elif payment.status == payment_pb2.PAYMENT_STATUS_SUCCEEDED:
                outcome = "confirmed"
                moved = await self.saga.confirm(
                    uow, order_id, payment.id, "Order confirmed: paid (found by reconciliation)"
                )
            else:  # failed, or given back (the order was cancelled meanwhile)
                outcome = "cancelled"
                reason = payment.failure_reason or payment.failure_code or "payment not taken"
                moved = await self.saga.cancel_unpaid(
                    uow,
                    order_id,
                    f"payment failed: {reason}",
                    "Order cancelled: payment failed (found by reconciliation)",
                )
            if not moved:
                return "moved on"  # an event, or another replica, got there first
            await uow.commit()
        logger.warning(
            "order %s left pending since %s: %s by reconciliation",
            order_id,
            created_at.isoformat(),
            outcome,
            extra={"order_id": order_id, "payment_status": _status_name(payment)},
        )
        return outcome


def _status_name(payment: payment_pb2.Payment | None) -> str:
    return payment_pb2.PaymentStatus.Name(payment.status) if payment is not None else "NONE"
