"""Tables of the order service's own database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from meshkit.data import UTCDateTime, new_metadata, utcnow
from meshkit.messaging import inbox_table, outbox_table


class Base(DeclarativeBase):
    metadata = new_metadata()


metadata = Base.metadata
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)


class OrderStatus:
    PENDING = "PENDING"
    PAID = "PAID"
    SHIPPED = "SHIPPED"
    CANCELLED = "CANCELLED"


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        # Same user and key: the same order (idempotent creation).
        UniqueConstraint("user_id", "idempotency_key", name="uq_orders_user_id_idempotency_key"),
        Index("ix_orders_user_id_id", "user_id", "id"),
        Index("ix_orders_status_created_at", "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=OrderStatus.PENDING)
    idempotency_key: Mapped[str] = mapped_column(String(128))
    # Fingerprint of the request body, to tell a replay from a key reused for another order.
    request_hash: Mapped[str] = mapped_column(String(64))
    currency_code: Mapped[str] = mapped_column(String(3))
    total_minor: Mapped[int] = mapped_column(BigInteger)
    payment_method: Mapped[str] = mapped_column(String(64))
    shipping_address: Mapped[str] = mapped_column(Text)  # JSON
    cancel_reason: Mapped[str] = mapped_column(String(500), default="")
    carrier: Mapped[str] = mapped_column(String(100), default="")
    tracking_number: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    items: Mapped[list[OrderItem]] = relationship(
        back_populates="order", lazy="selectin", order_by="OrderItem.position"
    )


class OrderItem(Base):
    __tablename__ = "order_items"

    order_id: Mapped[str] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[str] = mapped_column(String(32), index=True)
    # Name and price as they were when ordered: later catalog edits do not rewrite history.
    product_name: Mapped[str] = mapped_column(String(200))
    seller_id: Mapped[str] = mapped_column(String(32), default="", index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_minor: Mapped[int] = mapped_column(BigInteger)

    order: Mapped[Order] = relationship(back_populates="items")

    @property
    def line_total_minor(self) -> int:
        return self.unit_price_minor * self.quantity


class TimelineEvent(Base):
    """Everything that happened to an order, from any service, for support to trace it."""

    __tablename__ = "timeline_events"
    __table_args__ = (Index("ix_timeline_events_order_id_occurred_at", "order_id", "occurred_at"),)

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(32))
    event_type: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    summary: Mapped[str] = mapped_column(String(500), default="")


class CartItem(Base):
    """A line of a user's cart. Prices are not stored: the cart shows the current ones."""

    __tablename__ = "cart_items"

    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    product_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
