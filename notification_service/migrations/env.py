"""Alembic environment of the notification service."""

from __future__ import annotations

from meshkit.data import run_env
from notification_service.models import metadata

run_env(metadata)
