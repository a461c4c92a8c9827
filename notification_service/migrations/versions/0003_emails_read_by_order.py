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
    # Built in the migration's transaction: CONCURRENTLY would wait on every replica queued
    # for the migration lock, and deadlock with them.
    op.create_index(
        "ix_notifications_order_id_created_at", "notifications", ["order_id", "created_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_order_id_created_at", table_name="notifications")
