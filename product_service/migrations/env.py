"""Alembic environment of the product service."""

from __future__ import annotations

from meshkit.migrations import run_env
from product_service.tables import metadata

run_env(metadata)
