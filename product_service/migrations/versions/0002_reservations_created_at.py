"""Reservations by time: the order service looks for held ones whose order was never saved

Revision ID: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_reservations_created_at", "reservations", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_reservations_created_at", "reservations")
