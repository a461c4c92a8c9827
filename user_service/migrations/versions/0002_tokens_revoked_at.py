"""Revoked access: when a user's access tokens were last voided

Revision ID: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from meshkit.data import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tokens_revoked_at", UTCDateTime(), nullable=True))
        batch_op.create_index("ix_users_tokens_revoked_at", ["tokens_revoked_at"])


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index("ix_users_tokens_revoked_at")
        batch_op.drop_column("tokens_revoked_at")
