"""Alembic environment of the order service."""

from __future__ import annotations

from meshkit.data import run_env
from order_service.models import metadata

run_env(metadata)
