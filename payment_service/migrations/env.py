"""Alembic environment of the payment service."""

from __future__ import annotations

from meshkit.data import run_env
from payment_service.models import metadata

run_env(metadata)
