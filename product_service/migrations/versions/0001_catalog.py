"""Categories, products and stock reservations, with the indexes the listing needs.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from meshkit.data import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

NOT_ARCHIVED = sa.text("NOT archived")


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"

    op.create_table(
        "categories",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.String(2000), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_categories"),
    )
    op.create_index("uq_categories_name_lower", "categories", [sa.text("lower(name)")], unique=True)

    op.create_table(
        "products",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("price_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency_code", sa.String(3), nullable=False),
        sa.Column("stock", sa.BigInteger(), nullable=False),
        sa.Column("category_id", sa.String(32), nullable=True),
        sa.Column("seller_id", sa.String(32), nullable=False),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_products"),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["categories.id"],
            name="fk_products_category_id_categories",
            ondelete="RESTRICT",
        ),
        sa.CheckConstraint("stock >= 0", name="ck_products_stock_not_negative"),
        sa.CheckConstraint("price_minor >= 0", name="ck_products_price_not_negative"),
    )
    # One index per listing order, id last as the keyset's tiebreaker; descending orders
    # scan them backwards. Partial: archived products never appear in a listing.
    listing_indexes: list[tuple[str, list[str | sa.TextClause]]] = [
        ("ix_products_listing_created", ["created_at", "id"]),
        ("ix_products_listing_price", ["price_minor", "id"]),
        ("ix_products_listing_name", [sa.text("lower(name)"), "id"]),
    ]
    for name, columns in listing_indexes:
        op.create_index(
            name, "products", columns, postgresql_where=NOT_ARCHIVED, sqlite_where=NOT_ARCHIVED
        )
    op.create_index("ix_products_category_id", "products", ["category_id"])
    op.create_index("ix_products_seller_id", "products", ["seller_id"])
    if postgresql:
        # `lower(name) LIKE '%word%'` cannot use a B-tree; trigrams make it an index scan.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE INDEX ix_products_text_trgm ON products USING gin "
            "(lower(name) gin_trgm_ops, lower(description) gin_trgm_ops) WHERE NOT archived"
        )
        if (op.get_bind().dialect.server_version_info or (0,)) >= (14,):
            # Without statistics on these expressions the planner guesses how many rows a
            # word matches: it then scans a whole sort index for a rare word (slow on a
            # large catalog) or sorts every row for a common one. With them, both are
            # quick.
            op.execute("CREATE STATISTICS st_products_name_lower ON (lower(name)) FROM products")
            op.execute(
                "CREATE STATISTICS st_products_description_lower "
                "ON (lower(description)) FROM products"
            )

    op.create_table(
        "reservations",
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("product_id", sa.String(32), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("released_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("order_id", "product_id", name="pk_reservations"),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name="fk_reservations_product_id_products"
        ),
    )


def downgrade() -> None:
    op.drop_table("reservations")
    op.drop_table("products")
    op.drop_table("categories")
