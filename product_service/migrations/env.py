"""Alembic environment of the product service."""

from __future__ import annotations

from meshkit.data import run_env
from product_service.models import metadata

run_env(metadata)
