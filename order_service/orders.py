"""The order service's domain: placing orders, reading them, and their life cycle."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from google.protobuf.message import Message

from ecommerce.events.v1 import events_pb2
from meshkit.caching import ChangeAnnouncer, invalidation
from meshkit.context import Principal, Role, deadline_var
from meshkit.data import Database, IntegrityViolation, utcnow
from meshkit.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    Unavailable,
    quoted,
    require_id,
)
from meshkit.failures import dependency_down
from meshkit.identity import USERS, AccountDeactivated, RoleNotAllowed, authorize
from meshkit.ids import new_id
from meshkit.rpc import PageTokenCodec, money, page_size, timestamp, to_datetime
from meshkit.shielding import finish
from order_service import metrics
from order_service.commands import PlaceOrder
from order_service.errors import (
    IdempotencyKeyReused,
    NotOrderSeller,
    OrderNotFound,
    OrderNotPaid,
    OrderNotPending,
    ProductNotSold,
)
from order_service.models import OrderStatus
from order_service.reads import load_order, load_order_by_key, page_of_orders, timeline_of
from order_service.records import ItemRecord, OrderRecord, TimelineEntry
from order_service.unit_of_work import OrderUnitOfWork
from order_service.upstream import Catalog, Notifications, ProductInfo, Users

logger = logging.getLogger(__name__)

SERVICE_NAME = "order_service"
# How an email sent about an order shows on its timeline.
EMAIL_SENT = "notification.sent"
STATUSES = frozenset(
    {OrderStatus.PENDING, OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.CANCELLED}
)


def emit(uow: OrderUnitOfWork, order_id: str, body: Message, summary: str) -> None:
    """Publish the event and put it on the order's timeline, in the caller's unit of work."""
    envelope = uow.publish(body, correlation_id=order_id)
    uow.timeline.record(
        event_id=envelope.message_id,
        order_id=order_id,
        event_type=envelope.event_type,
        source=SERVICE_NAME,
        occurred_at=envelope.occurred_at,
        summary=summary,
    )


class Orders:
    def __init__(
        self,
        database: Database,
        unit_of_work: Callable[[], OrderUnitOfWork],
        catalog: Catalog,
        users: Users,
        page_tokens: PageTokenCodec,
        changes: ChangeAnnouncer | None = None,
        notifications: Notifications | None = None,
    ) -> None:
        self.db = database
        self.unit_of_work = unit_of_work
        self.catalog = catalog
        self.users = users
        self.page_tokens = page_tokens
        # Where every change to an order is announced once committed: the gateway keeps its
        # answers about an order until then.
        self.changes = changes
        # Where the emails on an order's timeline come from; none where no notification
        # service is deployed.
        self.notifications = notifications

    # --- placing an order -------------------------------------------------------------

    async def place(self, caller: Principal, command: PlaceOrder) -> OrderRecord:
        """Check the user, reserve stock priced as it is taken, then save order and event
        together."""
        user_id = authorize(caller, *USERS).subject
        replay = await self._replay(user_id, command)
        if replay is not None:
            return replay
        if not await self.users.is_active(user_id):
            raise AccountDeactivated("This account is deactivated.")
        # Shielded: once stock may be reserved, neither the caller hanging up nor its deadline
        # passing may stop this halfway, with the stock reserved and no order saved.
        return await finish(self._reserve_and_save(new_id(), user_id, command))

    async def _reserve_and_save(
        self, order_id: str, user_id: str, command: PlaceOrder
    ) -> OrderRecord:
        """The order saved with its stock reserved, or no order and the stock released.

        A reservation that failed may still have been made (a deadline that passed while the
        product service reserved), so every failure releases; releasing is idempotent.
        """
        try:
            products = await self._reserve(order_id, command)
            currency = self._check_sellable(command, products)
            return await self._save(order_id, user_id, command, products, currency)
        except IntegrityViolation:
            # The same key won a race with us: that order stands, ours never existed.
            await self._release_unless_saved(order_id)
            replay = await self._replay(user_id, command)
            if replay is None:
                raise
            return replay
        except BaseException:
            await self._release_unless_saved(order_id)
            raise

    async def _reserve(self, order_id: str, command: PlaceOrder) -> dict[str, ProductInfo]:
        """The order's stock reserved, its products as their stock was taken: one call to the
        catalog, which prices the order in the same statement that takes its stock.

        A refusal says why as a look at the products first would have: a product that does
        not exist or is no longer sold, or prices in two currencies, before a shortage. Those
        are rare, and only they pay for the look.
        """
        try:
            return await self.catalog.reserve(order_id, command.lines)
        except FailedPrecondition as refusal:
            try:
                products = await self.catalog.products([line.product_id for line in command.lines])
            except (Unavailable, DeadlineExceeded):
                raise refusal from None  # a definite answer, not one to retry for
            self._check_sellable(command, products)
            raise

    async def find_by_key(self, user_id: str, idempotency_key: str) -> OrderRecord | None:
        if not idempotency_key:
            return None
        return await load_order_by_key(self.db, user_id, idempotency_key)

    async def _replay(self, user_id: str, command: PlaceOrder) -> OrderRecord | None:
        existing = await self.find_by_key(user_id, command.idempotency_key)
        if existing is None:
            return None
        if existing.request_hash != command.fingerprint:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was already used for a different order; use a new key."
            )
        return existing

    @staticmethod
    def _check_sellable(command: PlaceOrder, products: dict[str, ProductInfo]) -> str:
        archived = [
            products[line.product_id].name
            for line in command.lines
            if products[line.product_id].archived
        ]
        if archived:
            raise ProductNotSold(f"No longer sold: {', '.join(archived)}.")
        currencies = {products[line.product_id].currency_code for line in command.lines}
        if len(currencies) != 1:
            raise InvalidArgument.for_field("items", "all items must be priced in one currency")
        return currencies.pop()

    async def _save(
        self,
        order_id: str,
        user_id: str,
        command: PlaceOrder,
        products: dict[str, ProductInfo],
        currency: str,
    ) -> OrderRecord:
        items = tuple(
            ItemRecord(
                position=position,
                product_id=line.product_id,
                product_name=products[line.product_id].name,
                seller_id=products[line.product_id].seller_id,
                quantity=line.quantity,
                unit_price_minor=products[line.product_id].price_minor,
            )
            for position, line in enumerate(command.lines)
        )
        now = utcnow()
        order = OrderRecord(
            id=order_id,
            user_id=user_id,
            status=OrderStatus.PENDING,
            idempotency_key=command.idempotency_key,
            request_hash=command.fingerprint,
            currency_code=currency,
            total_minor=sum(item.line_total_minor for item in items),
            payment_method=command.payment_method,
            shipping_address=command.address.to_json(),
            cancel_reason="",
            carrier="",
            tracking_number="",
            created_at=now,
            updated_at=now,
            paid_at=None,
            shipped_at=None,
            items=items,
        )
        event = events_pb2.OrderCreated(
            order_id=order_id,
            user_id=user_id,
            items=[
                events_pb2.OrderLine(
                    product_id=item.product_id,
                    product_name=item.product_name,
                    quantity=item.quantity,
                    unit_price=money(item.unit_price_minor, currency),
                )
                for item in items
            ],
            total=money(order.total_minor, currency),
            payment_method=command.payment_method,
            create_time=timestamp(now),
        )
        async with self.unit_of_work() as uow:
            uow.orders.add(order)
            metrics.count_move(uow, metrics.NONE, OrderStatus.PENDING)
            emit(uow, order_id, event, f"Order placed: {len(items)} item(s)")
            await uow.commit()
        return order

    async def _release_unless_saved(self, order_id: str) -> None:
        """Give back the stock reserved for `order_id`, unless the order was saved after all
        (a commit whose answer was lost): a saved order keeps its stock."""
        # The release gets a deadline of its own: the caller's may be what just passed.
        deadline_var.set(None)
        try:
            if await load_order(self.db, order_id) is not None:
                logger.warning("order %s was saved although saving it failed", order_id)
                return
            await self.catalog.release(order_id)
        except Exception as error:
            # The reconciler releases it later (`order_service.reconciler`); a failure other
            # than an outage is a bug to see with its traceback.
            if dependency_down(error):
                logger.warning(
                    "could not release the stock of unsaved order %s now (%s); the reconciler will",
                    order_id,
                    type(error).__name__,
                )
            else:
                logger.exception("could not release the stock of unsaved order %s", order_id)

    # --- reading ------------------------------------------------------------------------

    async def get(self, caller: Principal, order_id: str) -> OrderRecord:
        require_id(order_id)
        return self._visible(await load_order(self.db, order_id), caller, order_id)

    @staticmethod
    def _visible(order: OrderRecord | None, caller: Principal, order_id: str) -> OrderRecord:
        # Someone else's order is NOT_FOUND, not PERMISSION_DENIED: ids must not be probed.
        if order is None or not (caller.is_privileged or order.user_id == caller.subject):
            raise OrderNotFound(f"No order has id {quoted(order_id)}.")
        return order

    async def list(
        self,
        caller: Principal,
        *,
        status: str | None,
        user_id: str,
        requested_size: int,
        page_token: str,
    ) -> tuple[Sequence[OrderRecord], str]:
        if status is not None and status not in STATUSES:
            raise InvalidArgument.for_field("status", "is not an order status")
        if caller.is_privileged:
            owner = user_id or None
        elif user_id and user_id != caller.subject:
            raise RoleNotAllowed("Only admins list other users' orders.")
        else:
            owner = caller.subject
        limit = page_size(requested_size)
        query_key = f"{owner}|{status}"
        before = self.page_tokens.decode(page_token, query_key)[0] if page_token else None
        orders = await page_of_orders(
            self.db, user_id=owner, status=status, before_id=before, limit=limit + 1
        )
        next_token = ""
        if len(orders) > limit:
            next_token = self.page_tokens.encode([orders[limit - 1].id], query_key)
        return orders[:limit], next_token

    async def timeline(self, caller: Principal, order_id: str) -> Sequence[TimelineEntry]:
        """Every event of the order, oldest first: the ones recorded here, and the emails the
        notification service sent about it, which it answers for itself.

        The emails are asked for at read time rather than each reported by an event: that
        event cost every order two publishes, two deliveries and their rows, to serve a read
        that is rare next to orders. Without an answer about them, the read fails
        (UNAVAILABLE) rather than show a timeline with its emails missing.
        """
        require_id(order_id, "order_id")
        order = await self.get(caller, order_id)  # ownership check
        if self.notifications is None:
            return await timeline_of(self.db, order_id)
        recorded, emails = await asyncio.gather(
            timeline_of(self.db, order_id), self.notifications.sent_about(order.id)
        )
        # Rows of emails recorded here from the events of earlier versions: the notification
        # service answers for those too.
        recorded = [entry for entry in recorded if entry.event_type != EMAIL_SENT]
        sent = [
            TimelineEntry(
                event_id=email.id,
                order_id=order.id,
                event_type=EMAIL_SENT,
                source="notification_service",
                occurred_at=to_datetime(email.sent_time),
                summary=f"Email sent to the customer about {email.event_type}",
            )
            for email in emails
        ]
        return sorted([*recorded, *sent], key=lambda entry: (entry.occurred_at, entry.event_id))

    # --- life cycle -------------------------------------------------------------------------

    async def cancel(self, caller: Principal, order_id: str, reason: str) -> OrderRecord:
        authorize(caller, *USERS)
        require_id(order_id)
        async with self.unit_of_work() as uow:
            order = self._visible(await uow.orders.get(order_id), caller, order_id)
            if not await uow.orders.transition(
                order_id,
                OrderStatus.PENDING,
                OrderStatus.CANCELLED,
                cancel_reason=(reason.strip() or "cancelled by the customer")[:500],
                updated_at=utcnow(),
            ):
                raise OrderNotPending(
                    f"Only a PENDING order can be cancelled; this one is {order.status}."
                )
            metrics.count_move(uow, OrderStatus.PENDING, OrderStatus.CANCELLED)
            # Inside the transaction: if the release fails, the cancellation does not happen.
            await self.catalog.release(order_id)
            emit(
                uow,
                order_id,
                events_pb2.OrderCancelled(
                    order_id=order_id,
                    user_id=order.user_id,
                    reason=reason or "cancelled by the customer",
                    cancel_time=timestamp(utcnow()),
                    total=money(order.total_minor, order.currency_code),
                ),
                "Order cancelled" + (f": {reason}" if reason else ""),
            )
            await uow.commit()
        await self._announce(order_id)
        return await self._reload(order_id)

    async def ship(
        self, caller: Principal, order_id: str, carrier: str, tracking_number: str
    ) -> OrderRecord:
        principal = authorize(caller, Role.ADMIN, Role.SELLER)
        require_id(order_id)
        problems = [
            FieldViolation(name, "is required (at most 100 characters)")
            for name, value in (("carrier", carrier), ("tracking_number", tracking_number))
            if not value.strip() or len(value) > 100
        ]
        if problems:
            raise InvalidArgument("The shipment has invalid fields.", problems)
        await self.users.confirm(principal)
        async with self.unit_of_work() as uow:
            order = await uow.orders.get(order_id)
            if order is None:
                raise OrderNotFound(f"No order has id {quoted(order_id)}.")
            if principal.role is Role.SELLER and principal.subject not in {
                item.seller_id for item in order.items
            }:
                raise NotOrderSeller("Only a seller of an item in this order may ship it.")
            now = utcnow()
            if not await uow.orders.transition(
                order_id,
                OrderStatus.PAID,
                OrderStatus.SHIPPED,
                carrier=carrier.strip(),
                tracking_number=tracking_number.strip(),
                shipped_at=now,
                updated_at=now,
            ):
                raise OrderNotPaid(f"Only a PAID order can be shipped; this one is {order.status}.")
            metrics.count_move(uow, OrderStatus.PAID, OrderStatus.SHIPPED)
            emit(
                uow,
                order_id,
                events_pb2.OrderShipped(
                    order_id=order_id,
                    user_id=order.user_id,
                    carrier=carrier.strip(),
                    tracking_number=tracking_number.strip(),
                    ship_time=timestamp(now),
                ),
                f"Shipped with {carrier.strip()}, tracking {tracking_number.strip()}",
            )
            await uow.commit()
        await self._announce(order_id)
        return await self._reload(order_id)

    async def _announce(self, order_id: str) -> None:
        """A change committed here, announced before its maker is answered."""
        if self.changes is not None:
            await self.changes.changed(invalidation.order_changed(order_id))

    async def _reload(self, order_id: str) -> OrderRecord:
        order = await load_order(self.db, order_id)
        if order is None:
            raise OrderNotFound(f"No order has id {quoted(order_id)}.")
        return order
