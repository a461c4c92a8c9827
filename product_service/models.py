"""Tables of the product service's own database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from meshkit.data import UTCDateTime, new_metadata, utcnow
from meshkit.ids import new_id

# Listings never show archived products; indexes that serve them leave those rows out.
NOT_ARCHIVED = text("NOT archived")


class Base(DeclarativeBase):
    metadata = new_metadata()


metadata = Base.metadata


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(2000), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (
        # The last line of defence: whatever the code does, stock and prices stay >= 0.
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("price_minor >= 0", name="price_not_negative"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    price_minor: Mapped[int] = mapped_column(BigInteger)
    currency_code: Mapped[str] = mapped_column(String(3))
    stock: Mapped[int] = mapped_column(BigInteger, default=0)
    category_id: Mapped[str | None] = mapped_column(
        ForeignKey("categories.id", ondelete="RESTRICT"), nullable=True
    )
    seller_id: Mapped[str] = mapped_column(String(32))
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Reservation(Base):
    """Stock taken for one order, per product. The primary key makes a reserve idempotent."""

    __tablename__ = "reservations"

    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"), primary_key=True)
    quantity: Mapped[int] = mapped_column(BigInteger)
    # Indexed: the order service looks for held reservations of a window of time whose order
    # was never saved (`ListHeldReservations`).
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


# Unique whatever the case: "Books" and "books" are one category. Also orders ListCategories.
Index("uq_categories_name_lower", func.lower(Category.name), unique=True)

# One index per sort order of the listing, id last so the keyset is unique; a descending
# order reads the same index backwards.
Index(
    "ix_products_listing_created",
    Product.created_at,
    Product.id,
    postgresql_where=NOT_ARCHIVED,
    sqlite_where=NOT_ARCHIVED,
)
Index(
    "ix_products_listing_price",
    Product.price_minor,
    Product.id,
    postgresql_where=NOT_ARCHIVED,
    sqlite_where=NOT_ARCHIVED,
)
Index(
    "ix_products_listing_name",
    func.lower(Product.name),
    Product.id,
    postgresql_where=NOT_ARCHIVED,
    sqlite_where=NOT_ARCHIVED,
)
# Not partial: deleting a category looks for any product in it, archived or not.
Index("ix_products_category_id", Product.category_id)
Index("ix_products_seller_id", Product.seller_id)
# Trigram index for the text query (`lower(name) LIKE '%word%'`); PostgreSQL only.
Index(
    "ix_products_text_trgm",
    func.lower(Product.name).label("name_lower"),
    func.lower(Product.description).label("description_lower"),
    postgresql_using="gin",
    postgresql_ops={"name_lower": "gin_trgm_ops", "description_lower": "gin_trgm_ops"},
    postgresql_where=NOT_ARCHIVED,
).ddl_if(dialect="postgresql")
