"""Emails read by order: an index of notifications by order

An order's timeline asks this service for the emails sent about it. The outbox stays for
now: a version before this one publishes through it while a rollout replaces it.

Revision ID: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        op.create_index("ix_notifications_order_id_id", "notifications", ["order_id", "id"])
        return
    # Built beside the writes, not in their way: the table holds every email ever sent, and
    # a plain build would hold the consumer and the mailer back until it ends.
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_notifications_order_id_id",
            "notifications",
            ["order_id", "id"],
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    op.drop_index("ix_notifications_order_id_id", table_name="notifications")
