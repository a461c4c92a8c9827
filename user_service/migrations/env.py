"""Alembic environment of the user service."""

from __future__ import annotations

from meshkit.data import run_env
from user_service.models import metadata

run_env(metadata)
