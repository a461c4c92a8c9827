"""Emails read by order, not announced: an index by order, and no outbox

An order's timeline asks this service for the emails sent about it, so it publishes no event
per email any more, and has nothing else to publish.

Revision ID: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from meshkit.data import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_UNSENT = sa.text("sent_at IS NULL")


def upgrade() -> None:
    op.create_index("ix_notifications_order_id_id", "notifications", ["order_id", "id"])
    # What it holds unsent are notification.sent events, which nothing consumes any more.
    op.drop_table("outbox")


def downgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(length=32), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("correlation_id", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("message_id", name=op.f("uq_outbox_message_id")),
    )
    op.create_index(
        "ix_outbox_unsent", "outbox", ["id"], postgresql_where=_UNSENT, sqlite_where=_UNSENT
    )
    op.drop_index("ix_notifications_order_id_id", table_name="notifications")
