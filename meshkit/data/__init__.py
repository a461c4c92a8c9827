"""Persistence: the database and its sessions, prebuilt statements run in one transaction, and
the migrations every service runs the same way."""

from __future__ import annotations

from meshkit.data.db import Database, UTCDateTime, in_utc, new_metadata, utcnow
from meshkit.data.migrations import run_env, upgrade_to_head, upgrade_to_head_async
from meshkit.data.transactions import (
    IntegrityViolation,
    RowsInsert,
    Statement,
    Transaction,
    fetch_alone,
)
from meshkit.data.unit_of_work import UnitOfWork

__all__ = [
    "Database",
    "IntegrityViolation",
    "RowsInsert",
    "Statement",
    "Transaction",
    "UTCDateTime",
    "UnitOfWork",
    "fetch_alone",
    "in_utc",
    "new_metadata",
    "run_env",
    "upgrade_to_head",
    "upgrade_to_head_async",
    "utcnow",
]
